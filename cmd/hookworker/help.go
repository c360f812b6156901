package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
)

const helpFormat = `{{range .}}{{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`

// printHelp lists every environment variable with its default and meaning.
func printHelp(w io.Writer) int {
	fmt.Fprint(w, usage)
	fmt.Fprintln(w, "\nSettings (environment variables):")
	var c Config
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	if err := envconfig.Usagef(envPrefix, &c, tw, helpFormat); err != nil {
		fmt.Fprintln(w, "hookworker:", err)
		return 1
	}
	tw.Flush()
	return 0
}
