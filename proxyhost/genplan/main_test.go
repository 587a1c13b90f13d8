package main

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// TestPlanIsCurrent fails when wasm/filter/testdata/proxy-plan.json no longer
// matches policies/: run `go generate ./wasm/filter`.
func TestPlanIsCurrent(t *testing.T) {
	plan, err := Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checked, err := os.ReadFile("../../wasm/filter/testdata/proxy-plan.json")
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(plan, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(checked, &b); err != nil {
		t.Fatalf("checked-in plan is not JSON: %v", err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("wasm/filter/testdata/proxy-plan.json is stale: run `go generate ./wasm/filter`")
	}
}
