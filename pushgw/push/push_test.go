package push_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/timfd/fachdienst/pushgw/push"
)

func TestParseRetryAfter(t *testing.T) {
	cases := map[string]time.Duration{
		"":                              0,
		"0":                             0,
		"7":                             7 * time.Second,
		"120":                           2 * time.Minute,
		"99999999999999999999":          time.Hour, // capped, no overflow
		"-1":                            0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, // dates fall back to the own back-off
	}
	for in, want := range cases {
		require.Equal(t, want, push.ParseRetryAfter(in), in)
	}
}

func TestHashIsShortStableAndHidesInput(t *testing.T) {
	h := push.Hash("pushkey-123")
	require.Len(t, h, 12)
	require.Equal(t, h, push.Hash("pushkey-123"))
	require.NotEqual(t, h, push.Hash("pushkey-124"))
	require.NotContains(t, h, "pushkey")
}

func TestDataString(t *testing.T) {
	d := push.Device{Data: map[string]json.RawMessage{"s": json.RawMessage(`"v"`), "n": json.RawMessage(`1`)}}
	require.Equal(t, "v", d.DataString("s"))
	require.Equal(t, "", d.DataString("n"), "not a string")
	require.Equal(t, "", d.DataString("missing"))
}
