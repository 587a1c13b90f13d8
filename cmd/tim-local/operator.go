package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/timfd/fachdienst/internal/localstack"
)

// defaultPolicyDir is the working tree's policies/ when tim-local runs from the repository root (as
// `make run` does), else "" (the policies built in).
func defaultPolicyDir() string {
	if st, err := os.Stat(filepath.Join("policies", ".manifest")); err == nil && !st.IsDir() {
		return "policies"
	}
	return ""
}

// printOperator tells the operator how to drive the running stack: the policy in service, the CLI
// with the credential file, reloads and the VZD stand-in's client.
func printOperator(w io.Writer, st *localstack.Stack) {
	env := st.OperatorEnvFile()
	rev := st.Control.Policy.Current()
	fmt.Fprintf(w, "Policy: revision %s (bundle %q) from %s; %d Rego tests passed.\n", rev.Revision, rev.Manifest, rev.Source, rev.Tests)
	if st.PolicyDir() != "" {
		fmt.Fprintf(w, "Edit %s/*.rego or %s/data.json: the control plane compiles and tests the change and the proxies\n", st.PolicyDir(), st.PolicyDir())
		fmt.Fprintf(w, "use it within %s; a change that fails is refused and the previous revision keeps deciding.\n", st.PolicyRefresh())
	}
	fmt.Fprintf(w, "\nOperator CLI (the internal credential and the VZD stand-in's OAuth client are in %s):\n\n", env)
	fmt.Fprintf(w, "  go build -o build/bin/tim-ctl ./cmd/tim-ctl    # make run has built it\n")
	fmt.Fprintf(w, "  export TIM_ADMIN_ENV_FILE=%s\n", env)
	fmt.Fprintf(w, "  build/bin/tim-ctl policy status        # revision in service, last reload, what each proxy holds\n")
	fmt.Fprintf(w, "  build/bin/tim-ctl policy test          # compile and test the sources without using them\n")
	fmt.Fprintf(w, "  build/bin/tim-ctl policy shadow DIR    # evaluate a candidate beside it; promote or --drop\n")
	fmt.Fprintf(w, "  build/bin/tim-ctl federation status; build/bin/tim-ctl vzd health; build/bin/tim-ctl incidents\n")
	fmt.Fprintf(w, "  kill -HUP $(cat %s)   # reload the policy\n\n", filepath.Join(filepath.Dir(env), "tim-local.pid"))
}
