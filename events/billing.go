package events

import "strings"

// MonthsOf returns the number of months a WHMCS billing cycle covers, and
// false for cycles that do not renew (Free, One Time) or are unknown.
func MonthsOf(billingCycle string) (int, bool) {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(billingCycle), " ", "")) {
	case "monthly":
		return 1, true
	case "quarterly":
		return 3, true
	case "semi-annually", "semiannually":
		return 6, true
	case "annually":
		return 12, true
	case "biennially":
		return 24, true
	case "triennially":
		return 36, true
	}
	return 0, false
}
