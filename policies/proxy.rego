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
# direction; within a chain the common requests reach their answer first.
# The filter evaluates this per request, so the allow paths are lookups by
# key and else-chains that stop at the first answer: no scan except over the
# listener's few prefix exemptions, no counting, no string formatting.
decision := client_decision if {
	input.direction == "client"
} else := federation_decision if {
	input.direction == "federation"
} else := egress_decision if {
	input.direction == "egress"
} else := denied("default", 403, "M_FORBIDDEN", msg("unknown_direction"), "unknown direction", false)

# Client-server listener: exemptions, the endpoint table, client id
# (5.1.2.1.2), createRoom (5.1.2.1.8.1.2), stage 1 for invitees
# (5.1.2.1.8.1.1), joins through remote servers and remote media.
# client_other (sync, send, ...) carries nothing else to check.
client_decision := allowed_exemption if {
	exempt
} else := endpoint_refusal if {
	not endpoint_ok
	endpoint_refused
} else := client_id_denied if {
	not data.config.client_ids.approved[object.get(input, "client_id", null)]
	not client_id_waived
} else := allowed_default if {
	input.route == "client_other"
} else := createroom_decision if {
	input.route == "createRoom"
} else := invite_decision if {
	input.route == "invite"
} else := join_decision if {
	input.route == "join"
} else := unreachable("media server not in federation") if {
	input.route == "media"
	not media_server_federated
} else := allowed_unlisted if {
	not input.endpoint
} else := allowed_default

# createRoom may invite one user at most; so only the first invitee is left
# to check.
# Every membership createRoom creates counts: "invite" and the member events
# of "initial_state" (input.invitees holds both); third-party invites
# ("invite_3pid") are not part of the TI-Messenger.
createroom_decision := third_party_refused if {
	input.invite_3pid
} else := createroom_denied if {
	input.invitees[1] # more than one invitee, without counting them
} else := user_blocked if {
	invitee_blocked
} else := not_invitable(domain) if {
	domain := input.invitees[0].domain
	not federated(domain)
} else := allowed_default

# A client-server invite names exactly one user; one without (a third-party
# invite by e-mail or phone number) cannot pass stage 1.
invite_decision := invite_without_invitee if {
	not input.invitees[0]
} else := user_blocked if {
	invitee_blocked
} else := not_invitable(domain) if {
	domain := first_unfederated_invitee
} else := allowed_default

# A join or knock goes through the servers it names (server_name, via) and
# the room's own server: each must be federated.
join_decision := unreachable("join server not in federation") if {
	some d in input.servers
	not federated(d)
} else := allowed_default

# Server-server listener: exemptions, the endpoint table, X-Matrix (origin
# present, destination this server), stage 1 on origin (5.1.2.1.8.2.1),
# then stages 2/3 for invites by the control plane. Membership requests
# (make_join, send_join, make_knock, send_knock) need nothing beyond a
# federated origin; third-party invites are refused.
federation_decision := allowed_exemption if {
	exempt
} else := endpoint_refusal if {
	not endpoint_ok
	endpoint_refused
} else := unauthorized if {
	not input.xmatrix.origin
} else := unreachable("origin not in federation") if {
	# The origin's domain (without port); undefined for an origin that is
	# no server name, which is then not federated either.
	not origin_federated
} else := not_our_destination if {
	input.xmatrix.destination
	not destination_ours
} else := allowed_default if {
	# The common request (send, state, queries): nothing left to check.
	input.route == "federation_other"
} else := federation_invite_decision if {
	input.route == "federation_invite"
} else := third_party_refused if {
	input.route == "federation_third_party_invite"
} else := allowed_unlisted if {
	not input.endpoint
} else := allowed_default

federation_invite_decision := invite_unreadable if {
	not input.invite.invitee
} else := user_blocked if {
	invite_party_blocked
} else := ask_invite_permission

# Homeserver egress (forward proxy): exemptions, stage 1 on the host the
# forwarder connects to (CONNECT target, absolute URI or Host, which the
# filter sees as input.host), and an X-Matrix destination that names that
# host: a request signed for a federated server but sent elsewhere is
# refused. A host that a federated server's /.well-known/matrix/server
# named (input.delegated_from, observed by the filter) stands for that
# server, and only for it.
egress_decision := allowed_exemption if {
	exempt
} else := unreachable("destination not in federation") if {
	not destination_federated
	not host_delegated
} else := unreachable("X-Matrix destination differs from the host contacted") if {
	input.xmatrix.destination
	not destination_is_host
	not destination_delegated_to_host
} else := allowed_default

destination_is_host if input.xmatrix.destination_domain == input.host

# Server-name delegation (spec 5.1.2.2.1): the host is where a federated
# server's well-known points.
host_delegated if {
	some d in input.delegated_from
	federated(d)
}

destination_delegated_to_host if {
	some d in input.delegated_from
	d == input.xmatrix.destination_domain
	federated(d)
}

destination_ours if data.config.own_domains[input.xmatrix.destination_domain]

# --- endpoint table ------------------------------------------------------------

# The filter names the endpoint of the request (input.endpoint) from the
# listener's table, data.config.endpoints[direction]; a path that is not in
# it has no endpoint. Only the methods are looked up here: one lookup decides
# the common request, the refusal is worked out only when it fails. OPTIONS
# (CORS preflight) is answered by the homeserver for every endpoint, HEAD
# wherever GET is.
endpoint_ok if data.config.endpoints[input.direction][input.endpoint][input.method]

endpoint_refused if {
	not input.endpoint
	not unknown_endpoints_pass
}

endpoint_refused if method_refused

endpoint_refusal := endpoint_unknown if {
	not input.endpoint
} else := method_not_allowed

method_refused if {
	methods := data.config.endpoints[input.direction][input.endpoint]
	not methods[input.method]
	input.method != "OPTIONS"
	not head_of_get(methods)
}

# HEAD is GET without the body: allowed wherever GET is.
head_of_get(methods) if {
	input.method == "HEAD"
	methods.GET
}

# For migration an operator may let unknown endpoints pass; each is logged.
unknown_endpoints_pass if data.config.unknown_endpoints == "pass"

# Negated checks go through these helpers: `not f(input.x)` would be
# undefined, not true, when input.x is missing, and the request would slip
# through to the next check.
media_server_federated if federated(input.media_server)

destination_federated if federated(input.host)

origin_federated if federated(input.xmatrix.origin_domain)

# --- exemptions (5.1.2.1.7) -------------------------------------------------

# Exact-path exemptions are looked up, not scanned: the data index them by
# path, listener, method and host (docs/policy-contract.md), so a request that
# is not exempt pays one failed lookup however many of them there are. Prefix
# exemptions are few (the key server's by default); only those of the
# request's listener are tested. The control plane builds both from the
# operator's list of exemptions.
exempt if {
	by_direction := data.config.exempt_paths[input.path]
	exempt_method_host(by_direction[input.direction], input.method, input.host)
}

# A prefix never matches a path with dot segments: "/_matrix/key/v2/server/../../federation/..."
# must not borrow the key server's exemption if anything behind the filter
# resolves them.
exempt if {
	some e in data.config.exempt_prefixes[input.direction]
	startswith(input.path, e.path_prefix)
	not contains(input.path, "/.")
	object.get(e, "method", input.method) == input.method
	object.get(e, "host", input.host) == input.host
}

# "*" stands for any method or any host; a method or host missing from the
# input leaves the call undefined and so never matches, not even "*".
exempt_method_host(by_method, method, host) if by_method[method][host]

exempt_method_host(by_method, method, _) if by_method[method]["*"]

exempt_method_host(by_method, _, host) if by_method["*"][host]

exempt_method_host(by_method, _, _) if by_method["*"]["*"]

# --- client id (5.1.2.1.2) --------------------------------------------------

# The approved ids are looked up in the decision itself, without a call: they
# answer for nearly every request. A missing client id is looked up as null,
# which no id equals (`not approved[input.client_id]` would be undefined, not
# true, without one). Only an unapproved id asks whether the check is waived
# for the route or turned off.
client_id_waived if data.config.client_ids.exempt_routes[input.route]

client_id_waived if data.config.client_ids.enforce == false

client_id_denied := denied("client_id", client_id_status, "M_FORBIDDEN", msg("client_not_approved"), "client id not approved", false)

# Login answers 401 so that the client shows a login error; everywhere else
# the session exists already and the request is forbidden.
client_id_status := 401 if {
	input.route == "login"
} else := 403

# --- federation membership (stage 1) ----------------------------------------

# A domain is federated when it is one of ours or in a federation list that is
# not expired. Own domains never depend on the list. The list is looked up
# first (it answers for every remote peer), and `else` spares the second
# lookup once it has.
federated(d) if {
	data.federation.domains[d]
	input.federation_list_expired == false # list_current, without a call
} else if {
	data.config.own_domains[d]
}

# Only an explicit false counts as current: a filter that does not say how
# old its list is gets the expired behaviour.
list_current if input.federation_list_expired == false

# The first invitee (body order) whose domain is not federated; undefined when
# all are, which lets the decision fall through to the next check. The first
# invitee is looked at alone: there is seldom a second.
first_unfederated_invitee := d if {
	d := input.invitees[0].domain
	not federated(d)
} else := d if {
	input.invitees[1]
	bad := [inv.domain | some i, inv in input.invitees; i > 0; not federated(inv.domain)]
	d := bad[0]
}

# A missing domain makes the filter fetch a fresh list and evaluate once more;
# an expired list cannot be helped by that.
refetch if {
	list_current
} else := false

not_invitable(domain) := denied("federation", 403, "M_FORBIDDEN", sprintf(msg("not_invitable"), [domain]), expired_or("invitee not in federation"), refetch)

unreachable(why) := denied("federation", 403, "M_FORBIDDEN", msg("federation_unreachable"), expired_or(why), refetch)

expired_or(why) := why if {
	list_current
} else := "federation list expired"

# --- blocked users (A_23613) ---------------------------------------------------

# An Org-Admin's block: no membership is created for or by a blocked user of
# the own homeserver. data.config.blocked_users is keyed by MXID (the control
# plane fills it from the blocked set), so each membership costs one lookup.
# The client listener sees the memberships a request creates (every invitee);
# the user behind the session is the homeserver's to refuse, which ended the
# user's sessions when the block was set. The server-server listener sees both
# parties of an inbound invite.
invitee_blocked if {
	some inv in input.invitees
	data.config.blocked_users[inv.mxid]
}

invite_party_blocked if data.config.blocked_users[input.invite.invitee]

invite_party_blocked if data.config.blocked_users[input.invite.inviter]

user_blocked := denied("invite", 403, "M_FORBIDDEN", msg("user_blocked"), "user blocked by the organisation", false)

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

invite_without_invitee := denied("federation", 403, "M_FORBIDDEN", msg("invite_refused"), "invite without invitee", false)

third_party_refused := denied("invite", 403, "M_FORBIDDEN", msg("invite_refused"), "third-party invite", false)

not_our_destination := denied("xmatrix", 401, "M_UNAUTHORIZED", msg("unauthorized"), "X-Matrix destination is not this server", false)

endpoint_unknown := denied("endpoint", 404, "M_UNRECOGNIZED", msg("unrecognized"), "endpoint not in the listener's table", false)

method_not_allowed := denied("endpoint", 405, "M_UNRECOGNIZED", msg("method_not_allowed"), "method not in the listener's table", false)

invite_unreadable := denied("invite", 403, "M_FORBIDDEN", msg("invite_refused"), "invite event without invitee", false)

# --- documents ----------------------------------------------------------------

# The two allow documents are constants, built without a function call.
allowed_default := {
	"allow": true,
	"status": 200,
	"body": {},
	"ask": null,
	"reason": "no check objects",
	"check": "default",
	"refetch": false,
}

# An endpoint outside the table, let through by the operator's switch: the
# filter writes a decision-log line for it ("log").
allowed_unlisted := {
	"allow": true,
	"status": 200,
	"body": {},
	"ask": null,
	"reason": "endpoint not in the listener's table",
	"check": "endpoint",
	"refetch": false,
	"log": true,
}

allowed_exemption := {
	"allow": true,
	"status": 200,
	"body": {},
	"ask": null,
	"reason": "exemption rule",
	"check": "exemption",
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
	"unrecognized": "Unrecognized request",
	"method_not_allowed": "Method not allowed for this endpoint",
	"user_blocked": "This user is blocked by the organisation",
}
