package planvm

import (
	"errors"
	"fmt"
	"testing"
)

// TestFlatCode pins that the flat code (nesting resolved into jumps, small
// functions inlined) answers as the nested plan does and counts the same
// steps: each case evaluates with exactly its step count (by hand, one per
// statement run, BlockStmt/NotStmt/CallStmt included) and fails with one
// fewer.
func TestFlatCode(t *testing.T) {
	assign := func(n, target int) string {
		return stmt("AssignIntStmt", fmt.Sprintf(`{"value":%d,"target":%d}`, n, target))
	}
	blockStmt := func(blocks ...string) string {
		s := `{"blocks":[`
		for i, b := range blocks {
			if i > 0 {
				s += ","
			}
			s += b
		}
		return stmt("BlockStmt", s+`]}`)
	}
	not := func(b string) string { return stmt("NotStmt", fmt.Sprintf(`{"block":%s}`, b)) }
	brk := func(n int) string { return stmt("BreakStmt", fmt.Sprintf(`{"index":%d}`, n)) }
	call := func(fn string, arg string, result int) string {
		return stmt("CallStmt", fmt.Sprintf(`{"func":%q,"args":[%s,%s,%s],"result":%d}`, fn, loc(0), loc(1), arg, result))
	}
	fn := func(name string, blocks ...string) string {
		s := fmt.Sprintf(`{"name":%q,"params":[0,1,2],"return":3,"blocks":[`, name)
		for i, b := range blocks {
			if i > 0 {
				s += ","
			}
			s += b
		}
		return s + `]}`
	}
	result := block(resultOf(5)...)
	// f(x) = x, once-assigned: a reused, non-fresh frame would conflict.
	identity := fn("f", block(stmt("AssignVarOnceStmt", fmt.Sprintf(`{"source":%s,"target":3}`, loc(2))), stmt("ReturnLocalStmt", `{"source":3}`)))
	tests := []struct {
		name    string
		funcs   string
		blocks  []string
		input   string
		want    string // "" = undefined
		steps   int
		inlined bool // no CallStmt left in the plan
	}{
		{name: "not, block, break 1",
			blocks: []string{block(assign(1, 5),
				blockStmt(block(not(block(stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, boolOp(true), boolOp(false))))), assign(2, 6)), block(brk(1))),
				assign(3, 5)), result},
			want: "1", steps: 9},
		{name: "empty blocks count their steps",
			blocks: []string{block(blockStmt(block(), block(blockStmt())), assign(1, 5)), result},
			want:   "1", steps: 6},
		{name: "not of an empty block leaves the enclosing block",
			blocks: []string{block(assign(7, 5), blockStmt(block(not(block()), assign(8, 5)))), result},
			want:   "7", steps: 6},
		{name: "inlined function at two sites",
			funcs: "[" + identity + "]",
			blocks: []string{block(stmt("MakeNumberIntStmt", `{"value":9,"target":4}`), call("f", loc(4), 6),
				stmt("MakeNumberIntStmt", `{"value":8,"target":7}`), call("f", loc(7), 8),
				stmt("MakeArrayStmt", `{"capacity":2,"target":5}`),
				stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(6))),
				stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(8)))), result},
			want: "[9,8]", steps: 14, inlined: true},
		{name: "inlined function without result is undefined",
			funcs: "[" + fn("f", block(stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, loc(2), boolOp(true))),
				stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":3}`, loc(2))))) + "]",
			blocks: []string{block(call("f", boolOp(false), 5), assign(1, 5)),
				block(stmt("IsUndefinedStmt", `{"source":5}`), assign(2, 5)), result},
			want: "2", steps: 7, inlined: true},
		{name: "break out of an inlined function's block",
			funcs: "[" + fn("f", block(assign(1, 3), blockStmt(block(brk(2))), assign(2, 3)),
				block(stmt("ReturnLocalStmt", `{"source":3}`))) + "]",
			blocks: []string{block(call("f", boolOp(true), 5)), result},
			want:   "1", steps: 8, inlined: true},
		{name: "function called per element is not inlined",
			funcs: "[" + identity + "]", input: `[1,2,3]`,
			blocks: []string{block(stmt("MakeArrayStmt", `{"capacity":0,"target":5}`),
				stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
					stmt("CallStmt", fmt.Sprintf(`{"func":"f","args":[%s,%s,%s],"result":8}`, loc(0), loc(1), loc(7))),
					stmt("ArrayAppendStmt", fmt.Sprintf(`{"value":%s,"array":5}`, loc(8))))))), result},
			want: "[1,2,3]", steps: 17},
		{name: "else chain",
			blocks: []string{block(assign(1, 5)),
				block(stmt("IsUndefinedStmt", `{"source":5}`), assign(2, 5)),
				block(stmt("IsUndefinedStmt", `{"source":5}`), assign(3, 5)),
				block(stmt("IsDefinedStmt", `{"source":5}`), resultOf(5)[0], resultOf(5)[1], resultOf(5)[2])},
			want: "1", steps: 7},
		{name: "scan break 2 makes the scan undefined", input: `[1,2]`,
			blocks: []string{block(assign(1, 5), blockStmt(block(
				stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(brk(2)))), assign(2, 5))),
				assign(3, 5)), result},
			want: "3", steps: 8},
		{name: "scan break 3 leaves the block around it", input: `[1,2]`,
			blocks: []string{block(assign(1, 5), blockStmt(block(
				stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(brk(3)))), assign(2, 5))),
				assign(3, 5)), result},
			want: "1", steps: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := planDoc(nil, tc.funcs, tc.blocks...)
			got, ok, err := evalDoc(t, doc, tc.input, WithStepLimit(tc.steps))
			if err != nil {
				t.Fatalf("with %d steps: %v", tc.steps, err)
			}
			if tc.want == "" && ok || tc.want != "" && got != tc.want {
				t.Fatalf("got %s (defined %v), want %s", got, ok, tc.want)
			}
			if _, _, err := evalDoc(t, doc, tc.input, WithStepLimit(tc.steps-1)); !errors.Is(err, ErrStepLimit) {
				t.Fatalf("with %d steps: err = %v, want step limit", tc.steps-1, err)
			}
			p, err := Load([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			var count func([]instr)
			count = func(code []instr) {
				for _, in := range code {
					if in.op == opCallFunc {
						calls++
					}
					if in.ext != nil {
						count(in.ext.body)
					}
				}
			}
			count(p.plans[0].code)
			if tc.inlined != (calls == 0) && tc.funcs != "" {
				t.Fatalf("%d calls left in the plan, inlined %v", calls, tc.inlined)
			}
		})
	}
}
