# Invite permission, stages 2 and 3 (gemSpec_TI-Messenger-FD 5.1.2.1.8.2.2-3
# and 5.1.1.1.7), plus the permission configuration of TI-M Pro and TI-M ePA.
#
# The control plane evaluates tim/invite/decision natively with OPA when the
# filter asks (POST /internal/v1/invite-permission). It gathers the facts -
# release list hit, permission configuration, VZD whereIs results, the
# isInsurance flags of the federation list - into `input`
# (docs/policy-contract.md, second part); this package decides.
package tim.invite

# decision is {"allow": bool, "stage": 2|3, "reason": string} for every input.
decision := result(false, 2, "invalid input") if {
	not valid_input
} else := result(false, 2, "invite between two insured persons") if {
	variant == "epa"
	input.inviter_is_insurance == true
	input.invitee_is_insurance == true
} else := result(true, 2, "release list") if {
	input.release_list_hit == true
} else := result(permission_allows, 2, permission_reason) if {
	permission_config_applies
} else := result(true, 3, reason) if {
	reason := vzd_allows
} else := result(false, 3, vzd_refusal)

valid_input if {
	is_string(input.inviter)
	is_string(input.invitee)
	is_string(input.inviter_domain)
	is_string(input.invitee_domain)
}

# TI-M variant of this Fachdienst: "basis" (release list and VZD only), "pro"
# and "epa" (the invitee's permission configuration applies as well).
default variant := "pro"

variant := data.config.variant

result(allow, stage, reason) := {"allow": allow, "stage": stage, "reason": reason}

# --- permission configuration (TI-M Pro / TI-M ePA permissionConfig_V1) ------

permission_config_variants := {"pro", "epa"}

permission_config_applies if {
	permission_config_variants[variant]
	is_object(input.permission_config)
}

# An inviter named by any exception gets the opposite of the default setting.
# An unknown defaultSetting blocks: a configuration we cannot read must not
# open the account.
permission_allows := true if {
	input.permission_config.defaultSetting == "allow all"
	not excepted
} else := true if {
	input.permission_config.defaultSetting == "block all"
	excepted
} else := false

permission_reason := "permission config: exception" if {
	excepted
} else := "permission config: default setting"

excepted if input.permission_config.userExceptions[input.inviter]

excepted if input.permission_config.serverExceptions[input.inviter_domain]

# Group exceptions exist in TI-M Pro only; the single group defined is
# isInsuredPerson, i.e. an inviter whose domain is an insurance domain of the
# federation list. Items are objects {"groupName": ...}; a bare string is
# accepted as well.
excepted if {
	variant == "pro"
	input.inviter_is_insurance == true
	some g in input.permission_config.groupExceptions
	group_name(g) == "isInsuredPerson"
}

group_name(g) := g.groupName if {
	is_object(g)
} else := g

# --- stage 3: VZD-FHIR-Directory entries (5.1.1.1.7) ------------------------

# whereIs answers org, pract, orgPract or none for each MXID.
in_org := {"org", "orgPract"}

in_pract := {"pract", "orgPract"}

invitee_visible if not input.vzd.invitee_hidden

vzd_allows := "invitee in organisation directory" if {
	in_org[input.vzd.invitee]
	invitee_visible
} else := "both in person directory" if {
	in_pract[input.vzd.inviter]
	in_pract[input.vzd.invitee]
	invitee_visible
}

vzd_refusal := "vzd lookup missing" if {
	not input.vzd.invitee
} else := "invitee hidden in directory" if {
	not invitee_visible
}

else := "not found in directory"
