package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hookworker/hookworker/worker/catalog"
)

// cmdCatalogCheck loads and validates a catalog file (the argument, else
// HOOKWORKER_CATALOG) as `hookworker run` would, without connecting
// anywhere: check a catalog before restarting the worker with it.
func cmdCatalogCheck(cfg Config, args []string, stdout io.Writer) error {
	path := cfg.Catalog
	switch {
	case len(args) == 1:
		path = args[0]
	case len(args) > 1:
		return usageError{fmt.Errorf("want: hookworker catalog check [FILE]")}
	}
	if path == "" {
		return usageError{fmt.Errorf("catalog check: name a file, or set HOOKWORKER_CATALOG")}
	}
	c, err := catalog.Load(path, validators)
	if err != nil {
		return configError{fmt.Errorf("HOOKWORKER_CATALOG: %w", err)}
	}
	fmt.Fprintf(stdout, "catalog %s: %s, routing to %s\n", path, plural(len(c.Products()), "product"), strings.Join(c.Providers(), ", "))
	return nil
}

// plural is "1 product", "2 products".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
