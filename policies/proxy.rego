# Messenger-proxy checks of gemSpec_TI-Messenger-FD 5.1.2.1.2, 5.1.2.1.7 and 5.1.2.1.8.
#
# The filter extracts the facts (docs/policy-contract.md) and evaluates
# tim/proxy/decision with its plan VM; this package decides. It only uses
# builtins the VM implements (control/plancompile refuses anything else) and
# looks domains and client ids up by key, so a decision costs the same
# whatever the size of the federation list.
package tim.proxy

# decision is defined for every input: the checks run in order, the first that
# decides wins, and a request no check objects to is allowed. Each listener
# has its own chain so that a request only pays for the checks of its own
# direction.
decision := allowed("exemption", "exemption rule") if {
	exempt
} else := d if {
	input.direction == "client"
	d := client_decision
} else := d if {
	input.direction == "federation"
	d := federation_decision
} else := d if {
	input.direction == "egress"
	d := egress_decision
} else := denied("default", 403, "M_FORBIDDEN", msg("unknown_direction"), "unknown direction", false)

# Client-server listener: client id (5.1.2.1.2), createRoom (5.1.2.1.8.1.2),
# stage 1 for invitees (5.1.2.1.8.1.1) and remote media.
client_decision := client_id_denied if {
	not client_id_ok
} else := createroom_denied if {
	input.route == "createRoom"
	count(input.invitees) > 1
} else := invite_without_invitee if {
	input.route == "invite"
	not input.invitees[0]
} else := not_invitable(domain) if {
	invite_routes[input.route]
	domain := first_unfederated_invitee
} else := unreachable("media server not in federation") if {
	input.route == "media"
	not media_server_federated
} else := allowed("default", "no check objects")

# Server-server listener: X-Matrix, stage 1 on origin (5.1.2.1.8.2.1), then
# stages 2/3 for invites by the control plane.
federation_decision := unauthorized if {
	not input.xmatrix.origin
} else := unreachable("origin not in federation") if {
	not origin_federated
} else := invite_unreadable if {
	input.route == "federation_invite"
	not input.invite.invitee
} else := ask_invite_permission if {
	input.route == "federation_invite"
} else := allowed("default", "no check objects")

# Homeserver egress (forward proxy): stage 1 on the destination.
egress_decision := unreachable("destination not in federation") if {
	not destination_federated
} else := allowed("default", "no check objects")

# Negated checks go through these helpers: `not f(input.x)` would be
# undefined, not true, when input.x is missing, and the request would slip
# through to the next check.
media_server_federated if federated(input.media_server)

origin_federated if federated(input.xmatrix.origin)

destination_federated if federated(egress_destination)

# Client-server routes that carry invitees (stage 1 of 5.1.2.1.8.1.1).
invite_routes := {"createRoom", "invite"}

# --- exemptions (5.1.2.1.7) -------------------------------------------------

# An exemption matches when every field it names matches the request; it must
# name a path or a path prefix so that no rule exempts a whole listener.
# The path is compared first (inline, not in a function): it rejects most
# exemptions at once, and this loop runs for every request.
exempt if {
	some e in data.config.exemptions
	e.path == input.path
	exemption_fields(e)
}

# A prefix never matches a path with dot segments: "/_matrix/key/v2/server/../../federation/..."
# must not borrow the key server's exemption if anything behind the filter
# resolves them.
exempt if {
	some e in data.config.exemptions
	startswith(input.path, e.path_prefix)
	not contains(input.path, "/.")
	exemption_fields(e)
}

exemption_fields(e) if {
	object.get(e, "direction", input.direction) == input.direction
	object.get(e, "method", input.method) == input.method
	object.get(e, "host", input.host) == input.host
}

# --- client id (5.1.2.1.2) --------------------------------------------------

client_id_ok if data.config.client_ids.enforce == false

client_id_ok if data.config.client_ids.approved[input.client_id]

client_id_ok if data.config.client_ids.exempt_routes[input.route]

client_id_denied := denied("client_id", client_id_status, "M_FORBIDDEN", msg("client_not_approved"), "client id not approved", false)

# Login answers 401 so that the client shows a login error; everywhere else
# the session exists already and the request is forbidden.
client_id_status := 401 if {
	input.route == "login"
} else := 403

# --- federation membership (stage 1) ----------------------------------------

# A domain is federated when it is one of ours or in a federation list that is
# not expired. Own domains never depend on the list.
federated(d) if data.config.own_domains[d]

federated(d) if {
	list_current
	data.federation.domains[d]
}

# Only an explicit false counts as current: a filter that does not say how
# old its list is gets the expired behaviour.
list_current if input.federation_list_expired == false

# The first invitee (body order) whose domain is not federated; undefined when
# all are, which lets the decision fall through to the next check.
first_unfederated_invitee := bad[0] if {
	bad := [inv.domain | some inv in input.invitees; not federated(inv.domain)]
	count(bad) > 0
}

# A missing domain makes the filter fetch a fresh list and evaluate once more;
# an expired list cannot be helped by that.
refetch := true if {
	list_current
} else := false

not_invitable(domain) := denied("federation", 403, "M_FORBIDDEN", sprintf(msg("not_invitable"), [domain]), expired_or("invitee not in federation"), refetch)

unreachable(why) := denied("federation", 403, "M_FORBIDDEN", msg("federation_unreachable"), expired_or(why), refetch)

expired_or(why) := why if {
	list_current
} else := "federation list expired"

# Outbound requests name their peer in X-Matrix destination; requests without
# one (/.well-known/matrix/server, key fetches) go to the Host they address.
egress_destination := d if {
	d := input.xmatrix.destination
} else := input.host

# --- server-server authentication and invites -------------------------------

unauthorized := denied("xmatrix", 401, "M_UNAUTHORIZED", msg("unauthorized"), "missing X-Matrix authorization", false)

createroom_denied := denied("createroom", 400, "M_FORBIDDEN", msg("createroom_too_many"), "createRoom invites more than one user", false)

# Stages 2 and 3 are decided by the control plane (tim.invite). Until it
# answers, the decision carries the refusal, so that a filter that cannot ask
# fails closed with the right body.
ask_invite_permission := {
	"allow": false,
	"status": 403,
	"body": {"errcode": "M_FORBIDDEN", "error": msg("invite_refused")},
	"ask": "invite-permission",
	"reason": "invite needs stage 2/3",
	"check": "invite",
	"refetch": false,
}

# A client-server invite names exactly one user; one without (a third-party
# invite by e-mail or phone number) cannot pass stage 1.
invite_without_invitee := denied("federation", 403, "M_FORBIDDEN", msg("invite_refused"), "invite without invitee", false)

invite_unreadable := denied("invite", 403, "M_FORBIDDEN", msg("invite_refused"), "invite event without invitee", false)

# --- documents ----------------------------------------------------------------

allowed(check, reason) := {
	"allow": true,
	"status": 200,
	"body": {},
	"ask": null,
	"reason": reason,
	"check": check,
	"refetch": false,
}

denied(check, status, errcode, text, reason, refetch) := {
	"allow": false,
	"status": status,
	"body": {"errcode": errcode, "error": text},
	"ask": null,
	"reason": reason,
	"check": check,
	"refetch": refetch,
}

# Texts come from data so that operators can follow later gematik wording;
# each has a built-in fallback so that a partial data document still yields
# a Matrix error body.
msg(key) := text if {
	text := data.config.messages[key]
} else := default_messages[key]

default_messages := {
	"not_invitable": "%s could not be invited",
	"createroom_too_many": "An error occurred when starting communication. Please contact your administrator.",
	"federation_unreachable": "The other party could not be contacted",
	"unauthorized": "Missing or invalid X-Matrix authorization",
	"client_not_approved": "This client is not approved for the TI-Messenger",
	"invite_refused": "The invite was refused",
	"unknown_direction": "Request not permitted",
}
