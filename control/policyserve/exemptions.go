package policyserve

import (
	"fmt"
	"slices"
	"strings"
)

// Directions are the listeners an exemption can name; one that names none
// applies to all three.
var directions = []string{"client", "federation", "egress"}

// exemptionFields are the fields an exemption may have.
var exemptionFields = []string{"direction", "method", "host", "path", "path_prefix"}

// indexExemptions files exemption rules (the operator's list form,
// docs/policy-contract.md) into the shape the proxy policy reads, so that the
// filter finds a request's exact-path exemption with a lookup instead of
// testing every rule, and tests only the prefixes of the request's listener:
//
//	exempt_paths:    {path: {direction: {method|"*": {host|"*": true}}}}
//	exempt_prefixes: {direction: [{"path_prefix", "method"?, "host"?}]}
//
// An exemption without direction is filed under all three listeners. A
// prefix must name at least one full segment ("/_matrix/key/v2/server"), so
// that no rule exempts a whole listener. An exemption with an unknown field,
// a field that is not a non-empty string, or neither or both of path and
// path_prefix is refused.
func indexExemptions(cfg map[string]any, list []any) error {
	paths, err := object(cfg, "exempt_paths")
	if err != nil {
		return err
	}
	prefixes, err := object(cfg, "exempt_prefixes")
	if err != nil {
		return err
	}
	for i, raw := range list {
		e, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("policy: exemption %d: not an object", i+1)
		}
		f := map[string]string{}
		for k, v := range e {
			if !slices.Contains(exemptionFields, k) {
				return fmt.Errorf("policy: exemption %d: unknown field %q (want %s)", i+1, k, strings.Join(exemptionFields, ", "))
			}
			s, ok := v.(string)
			if !ok || s == "" {
				return fmt.Errorf("policy: exemption %d: %s must be a non-empty string", i+1, k)
			}
			f[k] = s
		}
		dirs := directions
		if d, ok := f["direction"]; ok {
			if !slices.Contains(directions, d) {
				return fmt.Errorf("policy: exemption %d: direction %q: want client, federation or egress", i+1, d)
			}
			dirs = []string{d}
		}
		path, hasPath := f["path"]
		prefix, hasPrefix := f["path_prefix"]
		switch {
		case hasPath == hasPrefix:
			return fmt.Errorf("policy: exemption %d: needs exactly one of path and path_prefix", i+1)
		case hasPath:
			if err := fileExactPath(paths, dirs, path, f); err != nil {
				return fmt.Errorf("policy: exemption %d: %w", i+1, err)
			}
		default:
			if err := filePrefix(prefixes, dirs, prefix, f); err != nil {
				return fmt.Errorf("policy: exemption %d: %w", i+1, err)
			}
		}
	}
	return nil
}

func fileExactPath(paths map[string]any, dirs []string, path string, f map[string]string) error {
	byDirection, err := object(paths, path)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		byMethod, err := object(byDirection, d)
		if err != nil {
			return err
		}
		hosts, err := object(byMethod, orAny(f["method"]))
		if err != nil {
			return err
		}
		hosts[orAny(f["host"])] = true
	}
	return nil
}

func filePrefix(prefixes map[string]any, dirs []string, prefix string, f map[string]string) error {
	if len(prefix) < 3 || prefix[0] != '/' || !strings.Contains(prefix[2:], "/") {
		return fmt.Errorf("path_prefix %q must name at least one full path segment (\"/a/...\"); use path for a single path", prefix)
	}
	entry := map[string]any{"path_prefix": prefix}
	for _, k := range []string{"method", "host"} {
		if v, ok := f[k]; ok {
			entry[k] = v
		}
	}
	for _, d := range dirs {
		list, ok := prefixes[d].([]any)
		if !ok && prefixes[d] != nil {
			return fmt.Errorf("exempt_prefixes.%s is not an array", d)
		}
		prefixes[d] = append(list, entry)
	}
	return nil
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
