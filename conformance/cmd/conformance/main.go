// Command conformance runs the conformance corpus (conformance/testdata) with
// OPA and the plan VM and prints one line per failed case. Its last line is
// always "conformance: N cases, M mismatches"; it exits 1 when M > 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/timfd/fachdienst/conformance"
)

func main() {
	verbose := flag.Bool("v", false, "print every case, not only the failed ones")
	flag.Parse()
	root, err := conformance.RepoRoot()
	if err != nil {
		fail(err)
	}
	suite, err := conformance.LoadSuite(root)
	if err != nil {
		fail(err)
	}
	rep := conformance.Run(context.Background(), suite)
	for _, r := range rep.Results {
		switch {
		case !r.OK():
			fmt.Println(r.Line())
		case *verbose:
			fmt.Printf("ok %s (%s): %s\n", r.Case.Name, r.Case.File, r.VM)
		}
	}
	fmt.Println(rep.Summary())
	if rep.Mismatches() > 0 {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "conformance:", err)
	fmt.Println("conformance: 0 cases, 1 mismatches")
	os.Exit(1)
}
