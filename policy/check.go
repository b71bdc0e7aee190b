package policy

// Report describes a policy that passed validation.
type Report struct {
	Rules      int    // p and g rules, duplicates counted once
	Policies   int    // p rules
	RoleLinks  int    // g rules
	Tests      int    // known answers checked; all passed
	Hash       string // first 12 hex digits of sha256(model file + policy file)
	Generation uint64 // from Engine.Check: the generation in force; 0 from Check
}

func report(st *state) Report {
	return Report{
		Rules:     st.rules(),
		Policies:  len(st.known.rules),
		RoleLinks: len(st.roleLinks),
		Tests:     st.tests,
		Hash:      st.hash,
	}
}

// Check validates the files named in opts exactly as Open does, without
// registering metrics or keeping anything: what `latch check` runs. There is
// no running policy, so the MaxRuleDrop check does not apply.
func Check(opts Options) (Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Report{}, err
	}
	src, digest, err := readSources(&opts)
	if err != nil {
		return Report{}, err
	}
	st, err := build(&opts, src, digest, nil)
	if err != nil {
		return Report{}, err
	}
	return report(st), nil
}

// Check validates the files on disk now exactly as Reload would, including
// the MaxRuleDrop check against the policy in force, but installs nothing and
// touches no metrics: a dry run of the next reload.
func (e *Engine) Check() (Report, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	src, digest, err := readSources(&e.opts)
	if err != nil {
		return Report{}, err
	}
	st, err := build(&e.opts, src, digest, e.cur.Load())
	if err != nil {
		return Report{}, err
	}
	r := report(st)
	r.Generation = e.cur.Load().gen
	return r, nil
}
