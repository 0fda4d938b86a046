package tracking

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// prefilter is what a raw line must hold to be decoded. It is checked on
// bytes, so it may let through lines the decoded event then fails; it
// never holds back a line that could match.
type prefilter struct {
	// fold: each must occur in the line, in any ASCII case (lower case,
	// JSON-escaped as the line is written: see foldNeedle).
	fold [][]byte
	// exact: each must occur in the line as is.
	exact [][]byte
	// ids, if not nil: the line's "msg" or "related" must be one of these.
	ids map[string]bool
	// since, until, if not zero: the line's time must be in the window.
	// Checked only on the files the window cuts.
	since, until time.Time
}

// Read sizes: a block is read at once and searched as one; a longer
// line grows it up to maxLine, and a line longer than that is skipped
// (no record Sluice writes is near it).
const (
	blockSize = 1 << 20
	maxLine   = 16 << 20
)

// scanSpec says which lines a scan decodes and what it does with them.
type scanSpec struct {
	pf prefilter
	// visit gets each line that passes and the index of its file in
	// names; it decodes what it needs. Each file is read by one
	// goroutine, so visit may keep per-file state indexed by i without
	// locks. The line is only valid during the call.
	visit func(i int, line []byte)
	// full, if not nil, is asked each time the first k+1 files are all
	// done whether they hold enough; if so no further file is started.
	full func(k int) bool
	// cutoff, if not nil, is the time after which events of file i are
	// of no use (zero: none yet); such lines are not decoded.
	cutoff func(i int) time.Time
}

// scan visits the lines of the files names (in dir) that pass the
// spec's prefilter. Files are read in parallel, one goroutine per CPU. A
// file that vanished (pruned meanwhile) is skipped.
func scan(dir string, names []string, spec scanSpec) error {
	pf, full := spec.pf, spec.full
	var (
		mu     sync.Mutex
		next   int // the next file to start
		done   = make([]bool, len(names))
		prefix int  // files [0, prefix) are done
		stop   bool // full said so, or an error
		first  error
		wg     sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if stop || next >= len(names) {
			return 0, false
		}
		next++
		return next - 1, true
	}
	finish := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && first == nil {
			first, stop = err, true
		}
		done[i] = true
		for prefix < len(done) && done[prefix] {
			prefix++
			if full != nil && full(prefix-1) {
				stop = true
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(names))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &picker{pf: &pf}
			buf := make([]byte, blockSize)
			for {
				i, ok := take()
				if !ok {
					return
				}
				p.checkTime = !pf.since.IsZero() && names[i] == fileFor(pf.since) ||
					!pf.until.IsZero() && names[i] == fileFor(pf.until)
				p.cutoff = nil
				if spec.cutoff != nil {
					p.cutoff = func() time.Time { return spec.cutoff(i) }
				}
				var err error
				buf, err = scanFile(filepath.Join(dir, names[i]), buf, p, func(line []byte) { spec.visit(i, line) })
				finish(i, err)
			}
		}()
	}
	wg.Wait()
	return first
}

// scanFile runs the lines of one file through p and visits those it
// keeps. It returns buf, grown if a line needed it, for the next file.
func scanFile(path string, buf []byte, p *picker, visit func([]byte)) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return buf, nil
	}
	if err != nil {
		return buf, err
	}
	defer f.Close()
	return blocks(f, buf, func(block []byte) { p.each(block, visit) })
}

// blocks reads r into buf and calls fn with each run of whole lines
// (ending in a newline, except at the end of r).
func blocks(r io.Reader, buf []byte, fn func([]byte)) ([]byte, error) {
	n := 0        // bytes held in buf
	skip := false // inside a line longer than maxLine
	for {
		m, err := r.Read(buf[n:])
		n += m
		if skip {
			if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
				n = copy(buf, buf[i+1:n])
				skip = false
			} else {
				n = 0
			}
		}
		if err == io.EOF {
			if n > 0 && !skip {
				fn(buf[:n])
			}
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		last := bytes.LastIndexByte(buf[:n], '\n')
		if last >= 0 {
			fn(buf[:last+1])
			n = copy(buf, buf[last+1:n])
		}
		if n == len(buf) { // one line fills the buffer
			if len(buf) >= maxLine {
				n, skip = 0, true
				continue
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}

// picker finds the lines of a block that pass a prefilter. It belongs to
// one goroutine: low is its scratch space.
type picker struct {
	pf        *prefilter
	checkTime bool             // the file is cut by the window
	cutoff    func() time.Time // see scanSpec.cutoff
	low       []byte           // the block in lower case
}

// each calls keep with the lines of block that pass. With a needle to
// search for, it searches the whole block (after lower-casing it, for
// case-insensitive needles), so that the cost per line of the millions
// that do not match is a share of one vectorised byte search, not a call
// per line.
func (p *picker) each(block []byte, keep func(line []byte)) {
	var hay, needle []byte
	switch {
	case len(p.pf.fold) > 0:
		p.low = lowerASCII(p.low, block)
		hay, needle = p.low, p.pf.fold[0]
	case len(p.pf.exact) > 0:
		hay, needle = block, p.pf.exact[0]
	case p.pf.ids != nil:
		p.eachOfIDs(block, keep)
		return
	default:
		for len(block) > 0 {
			line := block
			if i := bytes.IndexByte(block, '\n'); i >= 0 {
				line, block = block[:i], block[i+1:]
			} else {
				block = nil
			}
			if p.pass(line, nil, true) {
				keep(line)
			}
		}
		return
	}
	for i := 0; i < len(hay); {
		j := bytes.Index(hay[i:], needle)
		if j < 0 {
			return
		}
		j += i
		start := i + bytes.LastIndexByte(hay[i:j], '\n') + 1
		end := bytes.IndexByte(hay[j:], '\n')
		if end < 0 {
			end = len(hay)
		} else {
			end += j
		}
		var low []byte
		if len(p.pf.fold) > 0 {
			low = p.low[start:end]
		}
		if line := block[start:end]; p.pass(line, low, true) {
			keep(line)
		}
		i = end + 1
	}
}

// eachOfIDs calls keep with the lines of block about the prefilter's
// ids, by their "msg" or "related" field. Every line has a "msg" near
// its start; "related" is rare, so it is searched for over the whole
// block rather than along every line.
func (p *picker) eachOfIDs(block []byte, keep func(line []byte)) {
	related := []byte(`"related":"`)
	rel := bytes.Index(block, related) // the next "related" at or after the line
	for start := 0; start < len(block); {
		end := bytes.IndexByte(block[start:], '\n')
		if end < 0 {
			end = len(block)
		} else {
			end += start
		}
		line := block[start:end]
		ok := p.pf.ids[string(field(line, msgKey))]
		for rel >= 0 && rel < end {
			if !ok {
				ok = p.pf.ids[string(field(block[rel:end], string(related)))]
			}
			if r := bytes.Index(block[rel+1:], related); r >= 0 {
				rel += 1 + r
			} else {
				rel = -1
			}
		}
		if ok && p.pass(line, nil, false) {
			keep(line)
		}
		start = end + 1
	}
}

// pass checks the prefilter on one line; low is the line in lower case
// when the prefilter has fold needles. ids says whether to check the ids
// (eachOfIDs has).
func (p *picker) pass(line, low []byte, ids bool) bool {
	for _, n := range p.pf.fold {
		if !bytes.Contains(low, n) {
			return false
		}
	}
	for _, x := range p.pf.exact {
		if !bytes.Contains(line, x) {
			return false
		}
	}
	if ids && p.pf.ids != nil && !p.pf.ids[string(field(line, msgKey))] && !p.pf.ids[string(field(line, `"related":"`))] {
		return false
	}
	var cut time.Time
	if p.cutoff != nil {
		cut = p.cutoff()
	}
	if p.checkTime || !cut.IsZero() {
		// The time is the first field: parsing it is much cheaper than
		// decoding the line. A line whose time does not parse is left to
		// the decoder.
		t, err := time.Parse(time.RFC3339Nano, string(field(line, `"time":"`)))
		if err == nil && (p.checkTime && !p.pf.since.IsZero() && t.Before(p.pf.since) ||
			p.checkTime && !p.pf.until.IsZero() && t.After(p.pf.until) ||
			!cut.IsZero() && t.After(cut)) {
			return false
		}
	}
	return true
}

// msgKey finds the "msg" value. It is looked for without its opening
// quote, so the search starts on a rarer byte than '"'; the sequence
// msg":" cannot occur inside a JSON string, where the quotes would be
// escaped, so it is the key.
const msgKey = `msg":"`

// field returns the string value after key in a JSON line, or nil. The
// values looked up (ids, times) need no escaping, so the value ends at
// the next quote.
func field(line []byte, key string) []byte {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil
	}
	v := line[i+len(key):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}
