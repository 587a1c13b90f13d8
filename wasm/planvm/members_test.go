package planvm_test

import (
	"testing"

	"github.com/timfd/fachdienst/wasm/planvm"
)

func TestMembers(t *testing.T) {
	for _, n := range []int{0, 1, 8, 9, 20} {
		b := planvm.NewObjectBuilder(n)
		want := map[string]int64{}
		for i := 0; i < n; i++ {
			k := string(rune('a'+i%26)) + string(rune('A'+i/26))
			b.Set(k, planvm.Int(int64(i)))
			want[k] = int64(i)
		}
		o := b.Value()
		if o.NumMembers() != n {
			t.Fatalf("%d members: NumMembers %d", n, o.NumMembers())
		}
		got := map[string]int64{}
		for i := 0; i < o.NumMembers(); i++ {
			k, v := o.Member(i)
			ks, _ := k.AsString()
			got[ks], _ = v.AsInt()
		}
		if len(got) != len(want) {
			t.Fatalf("%d members: read %v", n, got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%d members: %s = %d, want %d", n, k, got[k], v)
			}
		}
	}
	for _, v := range []planvm.Value{planvm.NewArray(planvm.Int(1)), planvm.String("x"), planvm.Undefined()} {
		if v.NumMembers() != 0 {
			t.Errorf("%v has %d members", v, v.NumMembers())
		}
	}
}
