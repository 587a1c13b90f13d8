package t.stmts

# complete rules, defaults, else
default allow := false

allow if input.user == "admin"

level := "high" if {
	input.n > 10
} else := "mid" if {
	input.n > 5
} else := "low"

# partial set and object rules (SetAdd, ObjectInsertOnce, Scan over arrays)
names contains n if {
	some x in input.items
	n := x.name
}

by_name[x.name] := x.v if {
	some x in input.items
}

# conflict: ObjectInsertOnce with different values -> error
conflict_obj[k] := v if {
	some x in input.items
	k := "same"
	v := x.v
}

# complete rule conflict -> error
conflict_val := x if {
	some x in input.vals
}

# comprehensions (MakeArray/ArrayAppend, MakeSet, MakeObject/ObjectInsert)
doubled := [y | some x in input.nums; y := x * 2]

kv := {k: v | some k, v in input.obj}

keys_set := {k | some k, _ in input.obj}

# scan order over objects and sets is sorted
ordered := [k | some k, _ in input.obj]

set_order := [x | some x in {e | some e in input.nums}]

# negation (NotStmt), IsDefined/IsUndefined
no_admin if not input.user

not_in if not "x" in input.items

# functions with arguments, else, multiple definitions
f(x) := "pos" if x > 0

f(x) := "neg" if x < 0

g(x) := y if {
	y := f(x)
} else := "zero"

fn_results := [g(x) | some x in input.nums]

# recursion is forbidden in Rego; deep call chains are not
h1(x) := h2(x) + 1

h2(x) := h3(x) * 2

h3(x) := x - 1

chain := h1(input.n)

# with (WithStmt) on input and data
with_input := v if {
	v := allow with input.user as "admin"
}

with_data := v if {
	v := data.t.stmts.cfg_value with data.cfg.value as 42
}

cfg_value := data.cfg.value

with_nested := v if {
	v := data.t.stmts.cfg_value with data.cfg as {"value": "replaced"}
}

# data lookups (DotStmt) and dynamic refs into rules (CallDynamicStmt)
domain_known if data.domains[input.domain]

domain_info := data.domains[input.domain]

sub := data.t.stmts.subrules[input.which]

subrules.a := 1

subrules.b := 2 if input.n > 0

# equality/inequality of composites, numbers 1 == 1.0
eq_num if input.a == input.b

not_equal if input.a != input.b

arr_unify if {
	[a, b] := input.pair
	a == b
}

obj_unify := x if {
	{"k": x} := input.o
}

# object merge of virtual and base documents
merged := data.t.merge

# len/is_* via unification with arrays
len_match if {
	[_, _, _] = input.nums
}

# set/object of composite keys
composite_keys := {[1, "a"]: true, {"x": 1}: 2}

set_of_sets := {{1, 2}, {3}}

# every
all_pos if every x in input.nums { x > 0 }

# nested blocks with break: some/if chains
first_big := x if {
	some x in input.nums
	x > 100
}

any_big if {
	some x in input.nums
	x > 100
}

# numbers
big_int := 123456789012345678901234567890

float_val := 1.5

mixed := [1, 1.0, 2.50, -0]

obj_result := {"allow": allow, "status": 403, "body": {"errcode": "M_FORBIDDEN"}, "ask": null}
