// Command genplan compiles the proxy policy (policies/) into the IR plan the
// filter's tests load from wasm/filter/testdata/proxy-plan.json. Tests under
// wasm/ must not import OPA, so they read this checked-in plan;
// TestPlanIsCurrent fails when it is stale.
//
//	go run ./proxyhost/genplan -o wasm/filter/testdata/proxy-plan.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/timfd/fachdienst/control/plancompile"
	"github.com/timfd/fachdienst/policies"
)

func main() {
	out := flag.String("o", "wasm/filter/testdata/proxy-plan.json", "where to write the plan")
	flag.Parse()
	plan, err := Plan(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "genplan:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, plan, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "genplan:", err)
		os.Exit(1)
	}
}

// Plan compiles tim/proxy/decision from the embedded policies.
func Plan(ctx context.Context) ([]byte, error) {
	res, err := plancompile.Compile(ctx, policies.FS, policies.ProxyDecision)
	if err != nil {
		return nil, err
	}
	return res.Plan, nil
}
