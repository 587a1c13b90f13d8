package planvm

import (
	"fmt"
	"strings"
	"testing"
)

func BenchmarkZZStmt(b *testing.B) {
	doc := planDoc(nil, "", block(append([]string{
		stmt("AssignIntStmt", `{"value":0,"target":5}`),
		stmt("ScanStmt", fmt.Sprintf(`{"source":0,"key":6,"value":7,"block":%s}`, block(
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":8}`, loc(7))),
			stmt("AssignVarStmt", fmt.Sprintf(`{"source":%s,"target":9}`, loc(8))),
			stmt("EqualStmt", fmt.Sprintf(`{"a":%s,"b":%s}`, loc(9), loc(7))),
		))),
	}, resultOf(5)...)...))
	p, _ := Load([]byte(doc))
	arr := make([]string, 1000)
	for i := range arr {
		arr[i] = "1"
	}
	in, _ := ParseJSON([]byte("[" + strings.Join(arr, ",") + "]"))
	b.ResetTimer()
	for range b.N {
		p.Eval("t/p", in, NewObject())
	}
}
