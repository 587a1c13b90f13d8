package opcli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type policyStatus struct {
	Revision       string    `json:"revision"`
	BundleRevision string    `json:"bundle_revision"`
	Source         string    `json:"source"`
	CompiledAt     time.Time `json:"compiled_at"`
	Tests          int       `json:"tests"`
	LastReloadAt   time.Time `json:"last_reload_at"`
	LastError      string    `json:"last_error"`
	Accepted       int       `json:"reloads_accepted"`
	Refused        int       `json:"reloads_refused"`
	Proxies        []struct {
		Proxy           string    `json:"proxy"`
		Revision        string    `json:"revision"`
		Shadow          string    `json:"shadow"`
		ShadowEvaluated int64     `json:"shadow_evaluated"`
		ShadowDiffer    int64     `json:"shadow_differ"`
		SeenAt          time.Time `json:"seen_at"`
	} `json:"proxies"`
	Shadow *shadowReport `json:"shadow"`
}

type shadowReport struct {
	Revision       string    `json:"revision"`
	BundleRevision string    `json:"bundle_revision"`
	Tests          int       `json:"tests"`
	SetAt          time.Time `json:"set_at"`
	Evaluated      int64     `json:"evaluated"`
	Differ         int64     `json:"differ"`
}

func (c *client) policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "The policy revision in service, its tests, reloads and shadow candidates"}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Revision in service, last reload (and why it was refused), what each proxy holds", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st policyStatus
			raw, err := c.call(cmd.Context(), "GET", "/admin/v1/policy", nil, "", &st)
			return c.jsonOr(raw, err, func() { c.printPolicyStatus(&st) })
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "test", Short: "Compile the policy sources and run their Rego tests, without putting them in service", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Revision  string `json:"revision"`
				Bundle    string `json:"bundle_revision"`
				Tests     int    `json:"tests"`
				InService bool   `json:"in_service"`
			}
			raw, err := c.call(cmd.Context(), "POST", "/admin/v1/policy/test", nil, "", &r)
			return c.jsonOr(raw, err, func() {
				state := "differs from the revision in service (reload to use it)"
				if r.InService {
					state = "is the revision in service"
				}
				fmt.Fprintf(c.out, "ok: revision %s (bundle %s) compiles, %d Rego tests pass; it %s\n", r.Revision, orDash(r.Bundle), r.Tests, state)
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "reload", Short: "Read, compile and test the policy sources now and put them in service", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Revision string `json:"revision"`
			}
			raw, err := c.call(cmd.Context(), "POST", "/admin/v1/policy/reload", nil, "", &r)
			if err != nil && !c.json {
				return fmt.Errorf("reload refused, the previous revision stays in service: %w", err)
			}
			return c.jsonOr(raw, err, func() { fmt.Fprintf(c.out, "revision %s in service\n", r.Revision) })
		},
	})
	var drop bool
	shadow := &cobra.Command{
		Use:   "shadow [DIR|BUNDLE.tar.gz]",
		Short: "Evaluate a candidate beside the revision in service (no argument: its report; --drop: stop)",
		Long: "With a directory (OPA bundle layout: .manifest, *.rego, data.json) or an OPA bundle file, the candidate is\n" +
			"compiled and tested by the control plane and evaluated by every proxy beside the revision in service,\n" +
			"without changing any answer; requests whose decision would differ are counted and logged (hashed).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case drop:
				raw, err := c.call(cmd.Context(), "DELETE", "/admin/v1/policy/shadow", nil, "", nil)
				return c.jsonOr(raw, err, func() { fmt.Fprintln(c.out, "candidate dropped") })
			case len(args) == 0:
				var r shadowReport
				raw, err := c.call(cmd.Context(), "GET", "/admin/v1/policy/shadow", nil, "", &r)
				return c.jsonOr(raw, err, func() { c.printShadow(&r) })
			}
			bundle, err := bundleOf(args[0])
			if err != nil {
				return fail(ExitUsage, "%v", err)
			}
			var r struct {
				Candidate string `json:"candidate"`
				Bundle    string `json:"bundle_revision"`
				Tests     int    `json:"tests"`
				Revision  string `json:"revision"`
			}
			raw, err := c.call(cmd.Context(), "PUT", "/admin/v1/policy/shadow", bytes.NewReader(bundle), "application/gzip", &r)
			return c.jsonOr(raw, err, func() {
				fmt.Fprintf(c.out, "candidate %s (bundle %s, %d Rego tests pass) evaluated beside revision %s\n", r.Candidate, orDash(r.Bundle), r.Tests, r.Revision)
				fmt.Fprintln(c.out, "the proxies pick it up within their refresh interval; `tim-ctl policy shadow` shows their report")
			})
		},
	}
	shadow.Flags().BoolVar(&drop, "drop", false, "stop evaluating the candidate")
	cmd.AddCommand(shadow)
	cmd.AddCommand(&cobra.Command{
		Use: "promote", Short: "Put the shadow candidate in service (until the next reload from the sources)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r struct {
				Revision string `json:"revision"`
			}
			raw, err := c.call(cmd.Context(), "POST", "/admin/v1/policy/promote", nil, "", &r)
			return c.jsonOr(raw, err, func() {
				fmt.Fprintf(c.out, "revision %s in service; write it into the policy sources to keep it across reloads\n", r.Revision)
			})
		},
	})
	return cmd
}

func (c *client) printPolicyStatus(st *policyStatus) {
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "revision\t%s\n", st.Revision)
	fmt.Fprintf(tw, "bundle revision\t%s\n", orDash(st.BundleRevision))
	fmt.Fprintf(tw, "source\t%s\n", st.Source)
	fmt.Fprintf(tw, "compiled\t%s\n", ago(st.CompiledAt))
	fmt.Fprintf(tw, "Rego tests passed\t%d\n", st.Tests)
	fmt.Fprintf(tw, "reloads\t%d accepted, %d refused\n", st.Accepted, st.Refused)
	if st.LastError != "" {
		fmt.Fprintf(tw, "LAST RELOAD REFUSED\t%s\n", ago(st.LastReloadAt))
	}
	tw.Flush()
	if st.LastError != "" {
		fmt.Fprintf(c.out, "  %s\n  (the revision above stays in service)\n", strings.ReplaceAll(st.LastError, "\n", "\n  "))
	}
	fmt.Fprintln(c.out)
	tw = tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tHOLDS\tCURRENT\tSHADOW\tLAST FETCH")
	for _, p := range st.Proxies {
		cur := "no"
		if p.Revision == st.Revision {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Proxy, orDash(p.Revision), cur, orDash(p.Shadow), ago(p.SeenAt))
	}
	if len(st.Proxies) == 0 {
		fmt.Fprintln(tw, "(no proxy has fetched the policy yet)\t\t\t\t")
	}
	tw.Flush()
	if st.Shadow != nil {
		fmt.Fprintln(c.out)
		c.printShadow(st.Shadow)
	}
}

func (c *client) printShadow(r *shadowReport) {
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "shadow candidate\t%s (bundle %s, %d Rego tests)\n", r.Revision, orDash(r.BundleRevision), r.Tests)
	fmt.Fprintf(tw, "since\t%s\n", ago(r.SetAt))
	fmt.Fprintf(tw, "requests evaluated by both\t%d\n", r.Evaluated)
	fmt.Fprintf(tw, "decisions that would differ\t%d\n", r.Differ)
	tw.Flush()
	fmt.Fprintln(c.out, "(each differing request is logged by its proxy: \"tim-filter: shadow differs ...\", identifiers hashed)")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// bundleOf returns the OPA bundle (tar.gz) of a bundle file, or one packed from a directory in bundle
// layout: .manifest, *.rego and data.json/data.yaml files, at their paths below the directory.
func bundleOf(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return os.ReadFile(name)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	n := 0
	err = filepath.WalkDir(name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(name, p)
		rel = filepath.ToSlash(rel)
		base := path.Base(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(base, ".") || base == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !(base == ".manifest" || strings.HasSuffix(base, ".rego") || base == "data.json" || base == "data.yaml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "/" + rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		n++
		return err
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no policy files (.manifest, *.rego, data.json)", name)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
