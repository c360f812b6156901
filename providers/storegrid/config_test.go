package storegrid_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/storegrid"
)

func TestConfigValidate(t *testing.T) {
	good := storegrid.Config{
		Settings: providers.Settings{URL: "https://backup.example.com:6061", Timeout: 30 * time.Second, MaxConcurrent: 4, RatePerSecond: 10},
		Username: "admin", Password: "s3cret-admin-pw",
	}
	tests := []struct {
		name   string
		change func(c *storegrid.Config)
		names  string // the variable the error names; "" = valid
	}{
		{"valid", func(*storegrid.Config) {}, ""},
		{"disabled", func(c *storegrid.Config) { *c = storegrid.Config{} }, ""},
		{"http port 6060", func(c *storegrid.Config) { c.URL = "http://10.0.0.5:6060" }, ""},
		{"not a URL", func(c *storegrid.Config) { c.URL = "backup.example.com:6061" }, "HOOKWORKER_STOREGRID_URL"},
		{"ftp", func(c *storegrid.Config) { c.URL = "ftp://backup.example.com" }, "HOOKWORKER_STOREGRID_URL"},
		{"credentials in URL", func(c *storegrid.Config) { c.URL = "https://admin:pw@backup.example.com:6061" }, "HOOKWORKER_STOREGRID_URL"},
		{"query in URL", func(c *storegrid.Config) { c.URL = "https://backup.example.com:6061/?user=admin" }, "HOOKWORKER_STOREGRID_URL"},
		{"no username", func(c *storegrid.Config) { c.Username = " " }, "HOOKWORKER_STOREGRID_USERNAME"},
		{"no password", func(c *storegrid.Config) { c.Password = "" }, "HOOKWORKER_STOREGRID_PASSWORD"},
		{"no timeout", func(c *storegrid.Config) { c.Timeout = 0 }, "HOOKWORKER_STOREGRID_TIMEOUT"},
		{"no concurrency", func(c *storegrid.Config) { c.MaxConcurrent = 0 }, "HOOKWORKER_STOREGRID_MAX_CONCURRENT"},
		{"negative rate", func(c *storegrid.Config) { c.RatePerSecond = -1 }, "HOOKWORKER_STOREGRID_RATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.names == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.names != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.names+":")):
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.names)
			case err != nil && strings.Contains(err.Error(), good.Password):
				t.Fatalf("error carries the password: %v", err)
			}
			if tt.names != "" {
				if _, err := storegrid.New(c, nil); err == nil {
					t.Fatal("New accepted an invalid configuration")
				}
			}
		})
	}
	if _, err := storegrid.New(storegrid.Config{}, nil); err == nil || !strings.Contains(err.Error(), "HOOKWORKER_STOREGRID_URL") {
		t.Fatalf("New without a URL = %v, want an error naming HOOKWORKER_STOREGRID_URL", err)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"HOOKWORKER_STOREGRID_URL":                      "https://backup.example.com:6061",
		"HOOKWORKER_STOREGRID_USERNAME":                 "admin",
		"HOOKWORKER_STOREGRID_PASSWORD":                 "pw",
		"HOOKWORKER_STOREGRID_TIMEOUT":                  "7s",
		"HOOKWORKER_STOREGRID_MAX_CONCURRENT":           "3",
		"HOOKWORKER_STOREGRID_RATE":                     "2.5",
		"HOOKWORKER_STOREGRID_TLS_INSECURE_SKIP_VERIFY": "true",
	} {
		t.Setenv(k, v)
	}
	var c storegrid.Config
	if err := envconfig.Process(storegrid.EnvPrefix, &c); err != nil {
		t.Fatal(err)
	}
	want := storegrid.Config{
		Settings: providers.Settings{URL: "https://backup.example.com:6061", Timeout: 7 * time.Second,
			MaxConcurrent: 3, RatePerSecond: 2.5, TLSInsecure: true},
		Username: "admin", Password: "pw",
	}
	if c != want {
		t.Fatalf("from the environment: %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
