package tim.invite_test

import data.tim.invite

base := {
	"inviter": "@a:fed.de",
	"invitee": "@b:home.de",
	"inviter_domain": "fed.de",
	"invitee_domain": "home.de",
	"release_list_hit": false,
	"inviter_is_insurance": false,
	"invitee_is_insurance": false,
}

with_facts(extra) := object.union(base, extra)

decide(req, variant) := d if {
	d := invite.decision with input as req with data.config.variant as variant
}

is(d, allow, stage, reason) if d == {"allow": allow, "stage": stage, "reason": reason}

# --- input -----------------------------------------------------------------------

test_invalid_input_denied if {
	is(decide({}, "pro"), false, 2, "invalid input")
	is(decide(object.remove(base, {"invitee"}), "pro"), false, 2, "invalid input")
	is(decide(with_facts({"inviter": 42}), "pro"), false, 2, "invalid input")
}

# --- stage 2: release list ---------------------------------------------------------

test_release_list_hit_allows_at_stage_2 if {
	is(decide(with_facts({"release_list_hit": true}), "basis"), true, 2, "release list")
}

test_release_list_hit_beats_block_all if {
	req := with_facts({"release_list_hit": true, "permission_config": {"defaultSetting": "block all"}})
	is(decide(req, "pro"), true, 2, "release list")
}

# --- stage 3: VZD (5.1.1.1.7) ----------------------------------------------------------

test_stage3_invitee_in_org_directory_allows if {
	is(decide(with_facts({"vzd": {"inviter": "none", "invitee": "org"}}), "basis"), true, 3, "invitee in organisation directory")
	is(decide(with_facts({"vzd": {"inviter": "none", "invitee": "orgPract"}}), "basis"), true, 3, "invitee in organisation directory")
}

test_stage3_both_in_person_directory_allows if {
	is(decide(with_facts({"vzd": {"inviter": "pract", "invitee": "pract"}}), "basis"), true, 3, "both in person directory")
	is(decide(with_facts({"vzd": {"inviter": "orgPract", "invitee": "pract"}}), "basis"), true, 3, "both in person directory")
}

test_stage3_only_invitee_in_person_directory_denies if {
	is(decide(with_facts({"vzd": {"inviter": "none", "invitee": "pract"}}), "basis"), false, 3, "not found in directory")
	is(decide(with_facts({"vzd": {"inviter": "org", "invitee": "pract"}}), "basis"), false, 3, "not found in directory")
}

test_stage3_invitee_not_found_denies if {
	is(decide(with_facts({"vzd": {"inviter": "pract", "invitee": "none"}}), "basis"), false, 3, "not found in directory")
}

test_stage3_hidden_invitee_denies if {
	req := with_facts({"vzd": {"inviter": "pract", "invitee": "orgPract", "invitee_hidden": true}})
	is(decide(req, "basis"), false, 3, "invitee hidden in directory")
}

test_stage3_missing_lookup_fails_closed if {
	is(decide(base, "basis"), false, 3, "vzd lookup missing")
}

test_stage3_unknown_whereis_value_denies if {
	is(decide(with_facts({"vzd": {"inviter": "x", "invitee": "y"}}), "basis"), false, 3, "not found in directory")
}

# --- TI-M Pro permission configuration ------------------------------------------------------

test_pro_allow_all_allows if {
	req := with_facts({"permission_config": {"defaultSetting": "allow all"}})
	is(decide(req, "pro"), true, 2, "permission config: default setting")
}

test_pro_block_all_denies_even_if_in_vzd if {
	req := with_facts({"permission_config": {"defaultSetting": "block all"}, "vzd": {"inviter": "pract", "invitee": "org"}})
	is(decide(req, "pro"), false, 2, "permission config: default setting")
}

test_pro_allow_all_user_exception_blocks if {
	req := with_facts({"permission_config": {"defaultSetting": "allow all", "userExceptions": {"@a:fed.de": {}}}})
	is(decide(req, "pro"), false, 2, "permission config: exception")
}

test_pro_block_all_user_exception_allows if {
	req := with_facts({"permission_config": {"defaultSetting": "block all", "userExceptions": {"@a:fed.de": {}}}})
	is(decide(req, "pro"), true, 2, "permission config: exception")
}

test_pro_block_all_other_user_exception_denies if {
	req := with_facts({"permission_config": {"defaultSetting": "block all", "userExceptions": {"@c:fed.de": {}}}})
	is(decide(req, "pro"), false, 2, "permission config: default setting")
}

test_pro_server_exception if {
	block := with_facts({"permission_config": {"defaultSetting": "allow all", "serverExceptions": {"fed.de": {}}}})
	is(decide(block, "pro"), false, 2, "permission config: exception")
	allow := with_facts({"permission_config": {"defaultSetting": "block all", "serverExceptions": {"fed.de": {}}}})
	is(decide(allow, "pro"), true, 2, "permission config: exception")
	other := with_facts({"permission_config": {"defaultSetting": "block all", "serverExceptions": {"other.de": {}}}})
	is(decide(other, "pro"), false, 2, "permission config: default setting")
}

test_pro_group_exception_insured_person if {
	cfg := {"defaultSetting": "allow all", "groupExceptions": [{"groupName": "isInsuredPerson"}]}
	is(decide(with_facts({"permission_config": cfg, "inviter_is_insurance": true}), "pro"), false, 2, "permission config: exception")
	is(decide(with_facts({"permission_config": cfg}), "pro"), true, 2, "permission config: default setting")
}

test_pro_group_exception_as_string if {
	cfg := {"defaultSetting": "block all", "groupExceptions": ["isInsuredPerson"]}
	is(decide(with_facts({"permission_config": cfg, "inviter_is_insurance": true}), "pro"), true, 2, "permission config: exception")
}

test_pro_unknown_default_setting_blocks if {
	req := with_facts({"permission_config": {"defaultSetting": "maybe"}})
	is(decide(req, "pro"), false, 2, "permission config: default setting")
}

test_pro_without_config_falls_back_to_stage3 if {
	is(decide(with_facts({"vzd": {"inviter": "none", "invitee": "org"}}), "pro"), true, 3, "invitee in organisation directory")
}

test_basis_ignores_permission_config if {
	req := with_facts({"permission_config": {"defaultSetting": "block all"}, "vzd": {"inviter": "none", "invitee": "org"}})
	is(decide(req, "basis"), true, 3, "invitee in organisation directory")
}

test_variant_defaults_to_pro if {
	req := with_facts({"permission_config": {"defaultSetting": "block all"}})
	d := invite.decision with input as req with data.config as {}
	is(d, false, 2, "permission config: default setting")
}

# --- TI-M ePA -----------------------------------------------------------------------------------

test_epa_two_insurance_domains_denied if {
	req := with_facts({"inviter_is_insurance": true, "invitee_is_insurance": true, "release_list_hit": true})
	is(decide(req, "epa"), false, 2, "invite between two insured persons")
}

test_epa_one_insurance_domain_goes_on if {
	req := with_facts({"inviter_is_insurance": true, "permission_config": {"defaultSetting": "allow all"}})
	is(decide(req, "epa"), true, 2, "permission config: default setting")
}

test_pro_two_insurance_domains_not_special if {
	req := with_facts({"inviter_is_insurance": true, "invitee_is_insurance": true, "release_list_hit": true})
	is(decide(req, "pro"), true, 2, "release list")
}

test_epa_has_no_group_exceptions if {
	cfg := {"defaultSetting": "block all", "groupExceptions": [{"groupName": "isInsuredPerson"}]}
	req := with_facts({"permission_config": cfg, "inviter_is_insurance": true})
	is(decide(req, "epa"), false, 2, "permission config: default setting")
}

test_epa_user_exception if {
	cfg := {"defaultSetting": "block all", "userExceptions": {"@a:fed.de": {}}}
	is(decide(with_facts({"permission_config": cfg}), "epa"), true, 2, "permission config: exception")
}
