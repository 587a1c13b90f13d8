package federation

import (
	"time"

	"github.com/timfd/fachdienst/wasm/fedlist"
)

// FedlistVerifier verifies with wasm/fedlist against the trust anchors in ts: the registration service
// stores only what the filter would accept. A list without any domain is refused: distributing it would
// cut the provider off from the whole federation.
func FedlistVerifier(ts *fedlist.TrustStore) Verifier {
	return func(jws []byte, now time.Time) (int64, int, error) {
		l, err := fedlist.Verify(jws, ts, now)
		if err != nil {
			return 0, 0, err
		}
		if len(l.Domains) == 0 {
			return 0, 0, errEmptyList
		}
		return l.Version, len(l.Domains), nil
	}
}
