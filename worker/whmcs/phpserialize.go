package whmcs

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// phpSerializeStringMap returns PHP's serialize() of an array built from m,
// in key order. As in PHP, a key that is a canonical decimal integer ("12",
// "-3", not "012" or "+3") becomes an integer key (i:12;); any other key
// stays a string. String lengths are byte lengths, as PHP counts them.
//
//	map{"12": "abc"} → a:1:{i:12;s:3:"abc";}
func phpSerializeStringMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ai, aok := phpIntKey(a)
		bi, bok := phpIntKey(b)
		switch {
		case aok && bok:
			return compareInt(ai, bi)
		case aok:
			return -1
		case bok:
			return 1
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	b.WriteString("a:")
	b.WriteString(strconv.Itoa(len(m)))
	b.WriteString(":{")
	for _, k := range keys {
		if n, ok := phpIntKey(k); ok {
			b.WriteString("i:")
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteByte(';')
		} else {
			writePHPString(&b, k)
		}
		writePHPString(&b, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func writePHPString(b *strings.Builder, s string) {
	b.WriteString("s:")
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteString(`:"`)
	b.WriteString(s)
	b.WriteString(`";`)
}

// phpIntKey reports whether PHP would turn the array key k into an integer:
// a canonical decimal integer within int64.
func phpIntKey(k string) (int64, bool) {
	if k == "" || k == "-0" {
		return 0, false
	}
	digits := strings.TrimPrefix(k, "-")
	if digits == "" || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(k, 10, 64)
	return n, err == nil
}

// encodeCustomFields is the customfields parameter of UpdateClient and
// UpdateClientProduct: base64(serialize(array(fieldid => value))).
func encodeCustomFields(m map[string]string) string {
	return base64.StdEncoding.EncodeToString([]byte(phpSerializeStringMap(m)))
}
