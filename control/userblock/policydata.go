package userblock

import (
	"encoding/json"
	"errors"
)

// PolicyKey is the member of the policy data's "config" object that holds the blocked users, as an
// object keyed by MXID so that a rule looks a user up in O(1):
//
//	{"config": {"blocked_users": {"@alice:tim.example.de": true}}}
const PolicyKey = "blocked_users"

// MergeData returns the policy data document with config.blocked_users replaced by the current set. It
// is meant to run after policyserve.MergeData, on every policy rebuild.
func (b *Blocker) MergeData(data []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, errors.New("userblock: policy data is not a JSON object")
	}
	if doc == nil {
		doc = map[string]any{}
	}
	cfg, ok := doc["config"].(map[string]any)
	switch {
	case doc["config"] == nil:
		cfg = map[string]any{}
		doc["config"] = cfg
	case !ok:
		return nil, errors.New(`userblock: policy data: "config" is not an object`)
	}
	set := map[string]bool{}
	for _, u := range b.Users() {
		set[u] = true
	}
	cfg[PolicyKey] = set
	return json.Marshal(doc)
}
