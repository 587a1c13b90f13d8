package matrix

import (
	"errors"
	"strings"
	"testing"
)

func TestParseServerName(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	for _, c := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"example.de", "example.de", 0, true},
		{"Matrix.Example.DE", "Matrix.Example.DE", 0, true},
		{"example.de:8448", "example.de", 8448, true},
		{"localhost", "localhost", 0, true},
		{"localhost:1", "localhost", 1, true},
		{"a-b.c-d.de:65535", "a-b.c-d.de", 65535, true},
		{"1.2.3.4", "1.2.3.4", 0, true},
		{"1.2.3.4:1234", "1.2.3.4", 1234, true},
		{"[1234:5678::abcd]", "[1234:5678::abcd]", 0, true},
		{"[1234:5678::abcd]:5678", "[1234:5678::abcd]", 5678, true},
		{"[::ffff:1.2.3.4]", "[::ffff:1.2.3.4]", 0, true},
		{"3com.de", "3com.de", 0, true},
		{long63 + ".de", long63 + ".de", 0, true},
		{strings.Repeat("a.", 127) + "a", strings.Repeat("a.", 127) + "a", 0, true}, // 255 bytes

		{"", "", 0, false},
		{strings.Repeat("a.", 127) + "ab", "", 0, false}, // 256 bytes
		{long63 + "a.de", "", 0, false},
		{"example.de:", "", 0, false},
		{"example.de:0", "", 0, false},
		{"example.de:65536", "", 0, false},
		{"example.de:123456", "", 0, false},
		{"example.de:+80", "", 0, false},
		{"example.de:0080", "", 0, false},
		{"example.de:80:80", "", 0, false},
		{"exa_mple.de", "", 0, false},
		{"exa mple.de", "", 0, false},
		{"example.de.", "", 0, false},
		{".example.de", "", 0, false},
		{"example..de", "", 0, false},
		{"ëxample.de", "", 0, false},
		{"1.2.3.256", "", 0, false},
		{"1.2.3", "", 0, false},
		{"01.2.3.4", "", 0, false},
		{"1234:5678::abcd", "", 0, false},
		{"[1234:5678::abcd", "", 0, false},
		{"[1.2.3.4]", "", 0, false},
		{"[fe80::1%eth0]", "", 0, false},
		{"[::1]x", "", 0, false},
		{"[::1]:", "", 0, false},
		{"[]", "", 0, false},
		{"example.de/path", "", 0, false},
		{"@user:example.de", "", 0, false},
	} {
		host, port, err := ParseServerName(c.in)
		if c.ok {
			if err != nil || host != c.host || port != c.port {
				t.Errorf("ParseServerName(%q) = %q, %d, %v; want %q, %d", c.in, host, port, err, c.host, c.port)
			}
		} else if !errors.Is(err, ErrBadServerName) || host != "" || port != 0 {
			t.Errorf("ParseServerName(%q) = %q, %d, %v; want ErrBadServerName", c.in, host, port, err)
		}
	}
}

func TestParseUserID(t *testing.T) {
	for _, c := range []struct {
		in            string
		local, server string
		ok            bool
	}{
		{"@alice:example.de", "alice", "example.de", true},
		{"@a.b_c=d-e/f+g:example.de:8448", "a.b_c=d-e/f+g", "example.de:8448", true},
		{"@Alice!#$%&'*~:example.de", "Alice!#$%&'*~", "example.de", true}, // historical localpart
		{"@bob:[2001:db8::1]:8448", "bob", "[2001:db8::1]:8448", true},
		{"@x:1.2.3.4", "x", "1.2.3.4", true},
		{"@" + strings.Repeat("a", 243) + ":example.de", strings.Repeat("a", 243), "example.de", true}, // 255 bytes

		{"@" + strings.Repeat("a", 244) + ":example.de", "", "", false}, // 256 bytes
		{"alice:example.de", "", "", false},
		{"@alice", "", "", false},
		{"@:example.de", "", "", false},
		{"@alice:", "", "", false},
		{"@ali ce:example.de", "", "", false},
		{"@alïce:example.de", "", "", false},
		{"@ali\x00ce:example.de", "", "", false},
		{"@alice:exa_mple.de", "", "", false},
		{"@alice:example.de:0", "", "", false},
		{"!room:example.de", "", "", false},
		{"", "", "", false},
		{"@", "", "", false},
	} {
		local, server, err := ParseUserID(c.in)
		if c.ok {
			if err != nil || local != c.local || server != c.server {
				t.Errorf("ParseUserID(%q) = %q, %q, %v", c.in, local, server, err)
			}
		} else if !errors.Is(err, ErrBadUserID) || local != "" || server != "" {
			t.Errorf("ParseUserID(%q) = %q, %q, %v; want ErrBadUserID", c.in, local, server, err)
		}
	}
}

func TestClientID(t *testing.T) {
	for _, c := range []struct {
		name        string
		ua, tim, ti string
		want        string
		ok          bool
	}{
		{"user agent last field", "TIM-Client/1.2 (Android),Hersteller X,tim-client-1.0", "", "", "tim-client-1.0", true},
		{"fields trimmed", "a, b ,  client-7 \t", "", "", "client-7", true},
		{"X-TIM-User-Agent wins", "a,ua-id", "x,tim-id", "y,ti-id", "tim-id", true},
		{"TI-User-Agent before User-Agent", "a,ua-id", "", "y,ti-id", "ti-id", true},
		{"dedicated header without comma taken whole", "a,ua-id", "only-id", "", "only-id", true},
		{"unusable dedicated header falls through", "a,ua-id", "x,", "", "ua-id", true},
		{"ordinary user agent names no client", "Mozilla/5.0 (X11; Linux x86_64)", "", "", "", false},
		{"empty last field", "a,b,", "", "", "", false},
		{"nothing", "", "", "", "", false},
		{"control character", "a,cli\x01ent", "", "", "", false},
		{"non-ASCII", "a,clïent", "", "", "", false},
		{"too long", "a," + strings.Repeat("x", MaxClientIDLength+1), "", "", "", false},
		{"longest", "a," + strings.Repeat("x", MaxClientIDLength), "", "", strings.Repeat("x", MaxClientIDLength), true},
		{"id with spaces inside", "a,My Client 1", "", "", "My Client 1", true},
	} {
		id, ok := ClientID(c.ua, c.tim, c.ti)
		if id != c.want || ok != c.ok {
			t.Errorf("%s: ClientID = %q, %v; want %q, %v", c.name, id, ok, c.want, c.ok)
		}
	}
}

func TestParsersDoNotAllocate(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		ParseServerName("[2001:db8::1]:8448")
		ParseUserID("@alice:example.de:8448")
		ClientID("TIM/1.0,X,client-1", "", "")
	})
	if n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}
