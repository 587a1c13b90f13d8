package t.merge

virtual := 1

nested.rule := "r"
