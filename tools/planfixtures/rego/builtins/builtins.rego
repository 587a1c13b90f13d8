package t.bi

# One rule per builtin; arguments come from input.a, input.b and input.c so
# that the cases can feed any types (type errors make the rule undefined).
equal_ := input.a == input.b
neq_ := input.a != input.b
lt_ := input.a < input.b
lte_ := input.a <= input.b
gt_ := input.a > input.b
gte_ := input.a >= input.b
plus_ := input.a + input.b
minus_ := input.a - input.b
mul_ := input.a * input.b
div_ := input.a / input.b
rem_ := input.a % input.b
abs_ := abs(input.a)
round_ := round(input.a)
ceil_ := ceil(input.a)
floor_ := floor(input.a)
numbers_range := numbers.range(input.a, input.b)
count_ := count(input.a)
sum_ := sum(input.a)
product_ := product(input.a)
max_ := max(input.a)
min_ := min(input.a)
sort_ := sort(input.a)
concat_ := concat(input.a, input.b)
startswith_ := startswith(input.a, input.b)
endswith_ := endswith(input.a, input.b)
contains_ := contains(input.a, input.b)
split_ := split(input.a, input.b)
lower_ := lower(input.a)
upper_ := upper(input.a)
trim_ := trim(input.a, input.b)
trim_left_ := trim_left(input.a, input.b)
trim_right_ := trim_right(input.a, input.b)
trim_prefix_ := trim_prefix(input.a, input.b)
trim_suffix_ := trim_suffix(input.a, input.b)
trim_space_ := trim_space(input.a)
indexof_ := indexof(input.a, input.b)
substring_ := substring(input.a, input.b, input.c)
replace_ := replace(input.a, input.b, input.c)
replace_n := strings.replace_n(input.a, input.b)
sprintf_ := sprintf(input.a, input.b)
format_int_ := format_int(input.a, input.b)
to_number_ := to_number(input.a)
object_get := object.get(input.a, input.b, input.c)
object_keys := object.keys(input.a)
object_remove := object.remove(input.a, input.b)
object_union := object.union(input.a, input.b)
object_filter := object.filter(input.a, input.b)
array_concat := array.concat(input.a, input.b)
array_slice := array.slice(input.a, input.b, input.c)
array_reverse := array.reverse(input.a)
now_positive if time.now_ns() > 0
set_and := {x | some x in input.a} & {x | some x in input.b}
set_or := {x | some x in input.a} | {x | some x in input.b}
set_minus := {x | some x in input.a} - {x | some x in input.b}
intersection_ := intersection({{x | some x in input.a}, {x | some x in input.b}})
union_ := union({{x | some x in input.a}, {x | some x in input.b}})
is_string_ := is_string(input.a)
is_number_ := is_number(input.a)
is_boolean_ := is_boolean(input.a)
is_array_ := is_array(input.a)
is_set_ := is_set({x | some x in input.a})
is_object_ := is_object(input.a)
is_null_ := is_null(input.a)
type_name_ := type_name(input.a)
member_2 := input.a in input.b
member_3 if input.a, input.b in input.c
set_member := input.a in {x | some x in input.b}
sets_as_args := concat(",", {x | some x in input.a})
