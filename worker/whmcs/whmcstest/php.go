package whmcstest

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// DecodeCustomFields decodes a WHMCS customfields parameter:
// base64(serialize(array(fieldid => value))). Keys must be integers; values
// may be strings, integers, floats, booleans or null (all returned as
// strings, null as "").
func DecodeCustomFields(b64 string) (map[int]string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("customfields: not base64: %w", err)
	}
	m, err := Unserialize(string(raw))
	if err != nil {
		return nil, fmt.Errorf("customfields: %w", err)
	}
	out := make(map[int]string, len(m))
	for k, v := range m {
		id, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("customfields: key %q is not a field id", k)
		}
		out[id] = v
	}
	return out, nil
}

// Unserialize parses the output of PHP's serialize() for a one-level array
// of scalars (a:N:{key;value;...}) into a map from key to value, both as
// strings. It rejects anything else, trailing bytes and wrong lengths.
func Unserialize(s string) (map[string]string, error) {
	p := &phpParser{s: s}
	m, err := p.array()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("php serialize: trailing data at offset %d", p.i)
	}
	return m, nil
}

type phpParser struct {
	s string
	i int
}

func (p *phpParser) errf(format string, args ...any) error {
	return fmt.Errorf("php serialize: offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *phpParser) expect(lit string) error {
	if !strings.HasPrefix(p.s[p.i:], lit) {
		return p.errf("want %q", lit)
	}
	p.i += len(lit)
	return nil
}

// until reads up to (not including) the byte stop and skips it.
func (p *phpParser) until(stop byte) (string, error) {
	j := strings.IndexByte(p.s[p.i:], stop)
	if j < 0 {
		return "", p.errf("missing %q", stop)
	}
	v := p.s[p.i : p.i+j]
	p.i += j + 1
	return v, nil
}

func (p *phpParser) array() (map[string]string, error) {
	if err := p.expect("a:"); err != nil {
		return nil, err
	}
	ns, err := p.until(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return nil, p.errf("bad array length %q", ns)
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	m := make(map[string]string, n)
	for k := 0; k < n; k++ {
		key, err := p.scalar(true)
		if err != nil {
			return nil, err
		}
		val, err := p.scalar(false)
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, p.errf("duplicate key %q", key)
		}
		m[key] = val
	}
	if err := p.expect("}"); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *phpParser) scalar(isKey bool) (string, error) {
	if p.i+1 >= len(p.s) {
		return "", p.errf("unexpected end")
	}
	t := p.s[p.i]
	if t == 'N' && !isKey {
		return "", p.expect("N;")
	}
	if p.s[p.i+1] != ':' {
		return "", p.errf("bad token")
	}
	p.i += 2
	switch {
	case t == 'i':
		v, err := p.until(';')
		if err != nil {
			return "", err
		}
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", p.errf("bad integer %q", v)
		}
		return v, nil
	case t == 's':
		ls, err := p.until(':')
		if err != nil {
			return "", err
		}
		n, err := strconv.Atoi(ls)
		if err != nil || n < 0 {
			return "", p.errf("bad string length %q", ls)
		}
		if err := p.expect(`"`); err != nil {
			return "", err
		}
		if p.i+n > len(p.s) {
			return "", p.errf("string of %d bytes runs past the end", n)
		}
		v := p.s[p.i : p.i+n]
		p.i += n
		if err := p.expect(`";`); err != nil {
			return "", err
		}
		return v, nil
	case (t == 'b' || t == 'd') && !isKey:
		return p.until(';')
	}
	return "", p.errf("unsupported type %q", t)
}
