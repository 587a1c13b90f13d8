package planvm

// DependsOnTime reports whether the last Eval's result may depend on the
// time rather than only on plan, input and data: the evaluation called
// time.now_ns, or it was given a time with WithNow. A caller that remembers
// results by input (the filter does) must not remember such a result.
func (e *Evaluator) DependsOnTime() bool { return e.m.hasNow }
