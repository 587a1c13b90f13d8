package matrix

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// Differential checks: the header-fact parsers must answer exactly as the
// code they replaced (facts_oracle_test.go) for every input. The seeds run
// with every `go test`; the fuzz targets search further.

func diffPaths(t testing.TB) [][2]string {
	f, err := os.Open("testdata/routes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := s.Text(); line != "" && !strings.HasPrefix(line, "#") {
			m, p, _ := strings.Cut(line, " ")
			out = append(out, [2]string{m, p})
		}
	}
	for _, r := range benchRoutes {
		out = append(out, [2]string{r.method, r.path})
	}
	for _, p := range []string{
		"", "/", "?", "/?x", "_matrix", "/_matrix", "/_matrix/", "/_matrix/key", "/_matrix/key//v2/server",
		"/_matrix/client", "/_matrix/client/versions/", "/_matrix/client/versions/x", "/_matrix/client/api",
		"/_matrix/client/api/v1", "/_matrix/client/api/v1/createRoom", "/_matrix/client/v/createRoom",
		"/_matrix/client/v3x/createRoom", "/_matrix/client/r0/rooms", "/_matrix/client/r0/rooms//",
		"/_matrix/client/v3/rooms/!r/invite//", "/_matrix/client/v3/rooms/!r//invite", "/_matrix/client/v3/rooms/invite",
		"/_matrix/client/v3/rooms/!r/state/m.room.member/", "/_matrix/client/v3/rooms/!r/state/m.room.member//@a:b//",
		"/_matrix/client/v3/rooms/!r//state/m.room.member/@a:b", "/_matrix/client/v3/rooms/!r/state//m.room.member/@a:b",
		"/_matrix/client/v3/rooms/!r/x/state/m.room.member/a/state/m.room.member/b", "/_matrix/client/v3/rooms/!r/state/m.room.member",
		"/_matrix/client/v3/org.matrix.msc3916/media/download/s/m", "/_matrix/client/v3/org.matrix.msc3916/x",
		"/_matrix/client/v3/org.matrQQ.msc3916/media/download/s/m", "/_matrix/client/v3/org.matrix.msc391/media/download/s/m",
		"/_matrix/client/v3/createRoomx", "/_matrix/client/v3/createroom", "/_matrix/client/v3/creat", "/_matrix/federationx/v1/send",
		"/_matrix/federatio/v1/send", "/_matrix/client", "/_matrix/clientx/v3/sync", "/_matrix/client/v3/loginx", "/_matrix/client/v3/roomsx/r/invite",
		"/_matrix/client/v3/rooms/r/xinvite", "/_matrix/client/v3/rooms/r/invitex", "/_matrix/client/v3/rooms/r/invite/", "/_matrix/client/v3/rooms/r/ invite",
		"/_matrix/client/v3/media/downloadx/s/m", "/_matrix/client/v3/media/thumbnail/s/", "/_matrix/client/v3/media/thumbnail/s//m",
		"/_matrix/federation/v1/inviter/a/b", "/_matrix/federation/v1/invite/a//", "/_matrix/federation/v1/openid/userinfox",
		"/_matrix/federation/v1/openidx/userinfo", "/_matrix/federation/v1//openid//userinfo//", "/_matrix/client/api/v1x/login",
		"/_matrix/client/api//v1//login", "/_matrix/client/api/v1", "/_matrix/.well-known", "/.well-knownx/matrix/server",
		"/_matrix/client/v1/media/download/s", "/_matrix/client/v1/media/download//s//m", "/_matrix/media/download/s/m",
		"/_matrix/media", "/_matrix/federation", "/_matrix/federation/v3/invite/r/e", "/_matrix/federation/v1/invite/r",
		"/_matrix/federation/v1/openid/userinfo/x", "/_matrix/federation/v2/openid/userinfo", "/.well-known",
		"/.well-known/matrix", "/.well-known/matrix/server/", "//.well-known//matrix//client//?q", "/.well-known/x/server",
	} {
		for _, m := range []string{"GET", "POST", "PUT"} {
			out = append(out, [2]string{m, p})
		}
	}
	return out
}

var diffServerNames = []string{
	"", "a", "example.de", "Example.DE:8448", "a.b.c:1", "a:0", "a:01", "a:65535", "a:65536", "a:99999", "a:123456",
	"a:", ":80", "a.:1", ".a", "a..b", "a-b.c-", "1.2.3.4", "1.2.3.4:80", "1.2.3", "1.2.3.4.5", "01.2.3.4", "256.1.1.1",
	"1.2.3.4a", "123", "1e3", "[::1]", "[::1]:8448", "[::1]x", "[::1]:", "[::1", "[]", "[1.2.3.4]", "[::ffff:1.2.3.4]",
	"[fe80::1%eth0]", "[FE80::1]", "::1", "a_b.de", "a b", "a\x00b", "ä.de", strings.Repeat("a", 63) + ".de",
	strings.Repeat("a", 64) + ".de", strings.Repeat("a.", 127) + "a", strings.Repeat("a.", 128) + "a", "a:8448x", "a:8:8",
}

func checkServerName(t *testing.T, s string) {
	h, p, err := ParseServerName(s)
	oh, op, oerr := oldParseServerName(s)
	if h != oh || p != op || err != oerr {
		t.Fatalf("ParseServerName(%q) = %q %d %v, reference %q %d %v", s, h, p, err, oh, op, oerr)
	}
	// The shortcut of ParseXMatrix may only accept names that the full
	// check accepts as DNS names and that lower-casing leaves unchanged.
	if plainServerName(s) {
		if oerr != nil || strings.ToLower(s) != s {
			t.Fatalf("plainServerName(%q) = true, reference %q %d %v", s, oh, op, oerr)
		}
		if a, err := netip.ParseAddr(oh); err == nil {
			t.Fatalf("plainServerName(%q) = true for the address %v", s, a)
		}
	}
}

func FuzzServerNameDifferential(f *testing.F) {
	for _, s := range diffServerNames {
		f.Add(s)
	}
	f.Fuzz(checkServerName)
}

func checkUserID(t *testing.T, s string) {
	l, srv, err := ParseUserID(s)
	ol, osrv, oerr := oldParseUserID(s)
	if l != ol || srv != osrv || err != oerr {
		t.Fatalf("ParseUserID(%q) = %q %q %v, reference %q %q %v", s, l, srv, err, ol, osrv, oerr)
	}
}

func FuzzUserIDDifferential(f *testing.F) {
	for _, s := range diffServerNames {
		f.Add("@alice:" + s)
	}
	for _, s := range []string{"", "@", "@a", "@:", "@:a", "@a:", "@a:b", "a:b.de", "@a b:c.de", "@a\x7f:c.de", "@a@b:c.de", "@é:c.de", "@a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(checkUserID)
}

func checkClientID(t *testing.T, ua, tim, ti string) {
	id, ok := ClientID(ua, tim, ti)
	oid, ook := oldClientID(ua, tim, ti)
	if id != oid || ok != ook {
		t.Fatalf("ClientID(%q, %q, %q) = %q %v, reference %q %v", ua, tim, ti, id, ok, oid, ook)
	}
}

var diffUserAgents = []string{
	"", ",", " , ", "TIM-Client/1.0 (Linux),tim-client-1.0", "Mozilla/5.0 (X11)", "a,b,c", "a,b, c \t", "a,\tb c\t",
	"a, \x01b", "a,b\x7f", "a,bé", "only-id", " only-id ", "\t", "a," + strings.Repeat("x", 128), "a," + strings.Repeat("x", 129),
	strings.Repeat("x", 128), "a,b,", "a, ,", ",x",
}

func FuzzClientIDDifferential(f *testing.F) {
	for _, a := range diffUserAgents {
		f.Add(a, "", "")
		f.Add("UA,ua-id", a, "")
		f.Add("UA,ua-id", "", a)
	}
	f.Fuzz(checkClientID)
}

func checkXMatrix(t *testing.T, a, b string) {
	for _, in := range [][]string{{a}, {a, b}, {b, a}} {
		x, err := ParseXMatrix(in)
		ox, oerr := oldParseXMatrix(in)
		if x != ox || err != oerr {
			t.Fatalf("ParseXMatrix(%q) = %+v %v, reference %+v %v", in, x, err, ox, oerr)
		}
	}
}

var diffXMatrix = []string{
	"", "X-Matrix", "X-Matrix ", "x-matrix\torigin=o.de", " \tX-MATRIX  origin = o.de , key = k", "X-Matrixorigin=o.de",
	`X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`,
	`X-Matrix origin="O.DE",destination="[2001:DB8::1]:8448"`, `X-Matrix origin="a\"b.de"`, `X-Matrix origin="a\\.de"`,
	`X-Matrix origin="o.de\`, `X-Matrix origin="o.de\` + "\x7f\"", "X-Matrix origin=\"o.de\t\"", "X-Matrix origin=o.de\r",
	`X-Matrix origin=o.de,,, key=k,`, `X-Matrix origin=o.de,origin=o.de`, `X-Matrix ORIGIN=o.de,Key=a,KEY=b`,
	`X-Matrix origin=o.de,sig=a,SIG=b`, `X-Matrix origin=o.de,destination=`, `X-Matrix origin=o.de,destination=""`,
	`X-Matrix origin=o.de x=y`, `X-Matrix origin=o.de "x"=y`, `X-Matrix ori gin=o.de`, `X-Matrix origin==o.de`,
	`X-Matrix origin=o"de`, `X-Matrix =`, `X-Matrix origin`, `X-Matrix origin=o.de,foo="a,b\"c"`, "X-Matrix origin=\xffo.de",
	"X-Matrix origin=\"\xff\"", `X-Matrix origin="o.de"x`, `X-Matrix origin="o.de" ,key=k`, `X-Matrix oriGIN=O.de:8448`,
	"X-Matrix origin=o.de,sig=" + strings.Repeat("A", MaxAuthorizationLength), "Bearer x", "X-Matri\u212a origin=o.de",
	`X-Matrix kEy=k,origin=o.de`, `X-Matrix k\ey=k,origin=o.de`, "X\u2010Matrix origin=o.de",
	`X-Matrix DESTINATION="d.de",ORIGIN="o.de",KEY="k",SIG="s"`, `X-Matrix destinatioN=d.de,origiN=o.de`,
	`X-Matrix destinatiox=d.de,origin=o.de`, `X-Matrix origim=o.de`, `X-Matrix origin=o.de,kez=k,sih=s`,
	"X-Matrix origin=o.de,\x4bey=k", "X-Matrix origin=o.de,\x0bey=k", "X-Matrix \x0frigin=o.de", `X-Matrix origin=o.de,sig=`,
}

// The spellings that commonParams reads and their near misses, so that the
// fuzzer starts on both sides of every condition of that path.
var diffXMatrixCommon = []string{
	`X-Matrix origin="d500.example.de",destination="home.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`,
	`X-Matrix origin="d500.example.de:8448",key="ed25519:a",sig="c2lnbmF0dXJl",destination="home.example.de:8448"`,
	`X-Matrix origin="d500.example.de",key="ed25519:a",sig="c2lnbmF0dXJl"`,
	`X-Matrix origin="d500.example.de",key="k",sig="s"`, `X-Matrix origin="d500.example.de",key="",sig=""`,
	`X-Matrix origin="d500.example.de",destination="home.example.de",key="k",sig="s",destination="home.example.de"`,
	`X-Matrix origin="d500.example.de",destination="home.example.de",key="k",sig="s",`,
	`X-Matrix origin="d500.example.de",destination="home.example.de",key="k",sig="s",foo="x"`,
	`X-Matrix origin="d500.example.de", destination="home.example.de",key="k",sig="s"`,
	`X-Matrix origin="d500.example.de",destination="home.example.de",key="k",sig="s" `,
	`X-Matrix origin="d500.example.de",sig="s",key="k"`, `X-Matrix key="k",origin="d500.example.de",sig="s"`,
	`X-Matrix origin="d500.example.de",Key="k",sig="s"`, `X-Matrix Origin="d500.example.de",key="k",sig="s"`,
	`X-Matrix origin="D500.example.de",key="k",sig="s"`, `X-Matrix origin="d500.example.de",destination="Home.example.de",key="k",sig="s"`,
	`X-Matrix origin="o.de",key="k",sig="s"`, `X-Matrix origin="o.de:80",key="k",sig="s"`, `X-Matrix origin="1234567.9",key="k",sig="s"`,
	`X-Matrix origin="10.20.30.40",key="k",sig="s"`, `X-Matrix origin="10.20.30.400",key="k",sig="s"`, `X-Matrix origin="10.20.30.40:8448",key="k",sig="s"`,
	`X-Matrix origin="example.de:0",key="k",sig="s"`, `X-Matrix origin="example.de:08448",key="k",sig="s"`,
	`X-Matrix origin="example.de:65535",key="k",sig="s"`, `X-Matrix origin="example.de:65536",key="k",sig="s"`,
	`X-Matrix origin="example.de:123456",key="k",sig="s"`, `X-Matrix origin="example.de:",key="k",sig="s"`,
	`X-Matrix origin=":example.de",key="k",sig="s"`, `X-Matrix origin="example.:80",key="k",sig="s"`,
	`X-Matrix origin="example.de:8:8",key="k",sig="s"`, `X-Matrix origin="example.de:8a",key="k",sig="s"`,
	`X-Matrix origin=".example.de",key="k",sig="s"`, `X-Matrix origin="example.de.",key="k",sig="s"`,
	`X-Matrix origin="example..de",key="k",sig="s"`, `X-Matrix origin="exa_mple.de",key="k",sig="s"`,
	`X-Matrix origin="-example-.de",key="k",sig="s"`, "X-Matrix origin=\"exämple.de\",key=\"k\",sig=\"s\"",
	`X-Matrix origin="` + strings.Repeat("a", 63) + `",key="k",sig="s"`, `X-Matrix origin="` + strings.Repeat("a", 64) + `",key="k",sig="s"`,
	`X-Matrix origin="` + strings.Repeat("a", 58) + `:8448",key="k",sig="s"`, `X-Matrix origin="[::1]:8448",key="k",sig="s"`,
	`X-Matrix origin="d500.example.de",key="k\x",sig="s"`, "X-Matrix origin=\"d500.example.de\",key=\"k\tx\",sig=\"s\"",
	"X-Matrix origin=\"d500.example.de\",key=\"k\x7fx\",sig=\"\xff\xfe\"", "X-Matrix origin=\"d500.example.de\",key=\"k\",sig=\"s\x00\"",
	`X-Matrix origin="d500.example.de,key="k",sig="s"`, `X-Matrix origin="d500.example.de",key="k",sig="s`,
	`X-Matrix origin="d500.example.de",destination="",key="k",sig="s"`, `X-Matrix origin="",key="k",sig="s"`,
	`X-Matrix origin="d500.example.de",destinatio="x.de",key="k",sig="s"`, `X-Matrix origin="d500.example.de",key="k",sig="s",destination="x`,
	`X-Matrix  origin="d500.example.de",key="k",sig="s"`, `x-matrix origin="d500.example.de",key="k",sig="s"`,
	"X-Matrix\torigin=\"d500.example.de\",key=\"k\",sig=\"s\"", `X-Matrix origin="d500.example.de"`, `X-Matrix origin=`,
}

// FuzzXMatrixCommonDifferential builds headers of the common shape from
// their parts, so that the fuzzer spends its time near the shortcut.
func FuzzXMatrixCommonDifferential(f *testing.F) {
	f.Add("d500.example.de", "home.example.de", "ed25519:a", "c2lnbmF0dXJl", uint8(0))
	f.Add("d500.example.de:8448", "home.example.de:8448", "ed25519:a", "c2lnbmF0dXJl", uint8(1))
	f.Add("d500.example.de", "", "ed25519:a", "c2lnbmF0dXJl", uint8(2))
	f.Add("Example.DE", "1.2.3.4", "k", "s", uint8(3))
	f.Fuzz(func(t *testing.T, origin, destination, key, sig string, shape uint8) {
		var h string
		switch shape % 4 {
		case 0:
			h = `X-Matrix origin="` + origin + `",destination="` + destination + `",key="` + key + `",sig="` + sig + `"`
		case 1:
			h = `X-Matrix origin="` + origin + `",key="` + key + `",sig="` + sig + `",destination="` + destination + `"`
		case 2:
			h = `X-Matrix origin="` + origin + `",key="` + key + `",sig="` + sig + `"`
		default:
			h = `X-Matrix origin="` + origin + destination + `",key="` + key + sig + `"`
		}
		checkXMatrix(t, h, `X-Matrix origin="`+origin+`"`)
	})
}

func FuzzXMatrixDifferential(f *testing.F) {
	for _, a := range append(diffXMatrix, diffXMatrixCommon...) {
		f.Add(a, "")
		f.Add(a, `X-Matrix origin=o.de,key=k,sig=s`)
	}
	f.Fuzz(checkXMatrix)
}
