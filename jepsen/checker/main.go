// jepsen/checker -- checks one level's history recorded by kvj (jepsen/kvj.c).
//
//	checker -history H.jsonl -nemesis N.jsonl -level quorum -out DIR [-timeout 60s]
//
// Register workload: porcupine, partitioned by key, over a read/write/cas register model.
// Failed operations are dropped (definitely not applied); "info" reads are dropped (they
// returned nothing); "info" writes and cas get a return time after every other operation
// (they may take effect at any point after their call). A key that is not linearizable gets
// porcupine's HTML visualization in DIR/lin-<key>.html.
//
// Set workload: every acknowledged add must be found by the final QUORUM read (else lost);
// an add that failed (definitely not applied) must not be found (else resurrected); an
// element whose final read never succeeded is never-read.
//
// Per nemesis window (an operation belongs to the window its call falls in; "none" is the
// time with no fault active): operations, availability (ok / all), stale reads (a read that
// returned a value older than one whose write was acknowledged before the read began, or
// nothing when such a write exists), lost writes.
//
// With -min-availability F and -availability-nemeses LIST (jepsen/run passes 0.99 and
// partition,isolate,ring at ONE), a window of one of those nemeses whose availability is
// below F fails the run: ONE must stay available on both sides of a partition.
//
// Writes DIR/summary.json and DIR/rows.md (one Markdown table row per window). Exit status:
// 0 clean; otherwise the OR of 1 (linearizability violation), 2 (lost acknowledged writes),
// 4 (resurrected or phantom values), 8 (a key's check timed out: unknown), 16 (a fault
// window without operations: the run is not valid there), 32 (availability below
// -min-availability in a window of -availability-nemeses).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

type Op struct {
	Client   int    `json:"client"`
	Workload string `json:"workload"`
	Key      string `json:"key"`
	F        string `json:"f"`
	Value    *int64 `json:"value"`
	Expect   *int64 `json:"expect"`
	Applied  *bool  `json:"applied"`
	Status   string `json:"status"`
	CallNs   int64  `json:"call_ns"`
	ReturnNs int64  `json:"return_ns"`
	Node     int    `json:"node"`
	Level    string `json:"level"`
	Code     string `json:"code"`
	Err      string `json:"err"`
	window   string
}

type Window struct {
	Nemesis string `json:"nemesis"`
	StartNs int64  `json:"start_ns"`
	EndNs   int64  `json:"end_ns"`
	Skipped bool   `json:"skipped"`
	Note    string `json:"note"`
}

type regInput struct {
	F      string // read, write, cas
	Value  int64  // write/cas: new value
	Expect int64  // cas: expected (-1 absent)
}

type regOutput struct {
	Value   int64 // read: value read (-1 absent)
	Applied int   // cas: 1 applied, 0 not, -1 unknown
}

func val(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func showVal(v int64) string {
	if v < 0 {
		return "∅"
	}
	return fmt.Sprint(v)
}

var registerModel = porcupine.Model{
	Init: func() interface{} { return int64(-1) },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		s := state.(int64)
		in := input.(regInput)
		out := output.(regOutput)
		switch in.F {
		case "read":
			return out.Value == s, s
		case "write":
			return true, in.Value
		case "cas":
			switch out.Applied {
			case 1:
				return s == in.Expect, in.Value
			case 0:
				return s != in.Expect, s
			default: // unknown outcome: applied iff it could have been
				if s == in.Expect {
					return true, in.Value
				}
				return true, s
			}
		}
		return false, s
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(regInput)
		out := output.(regOutput)
		switch in.F {
		case "read":
			return "read -> " + showVal(out.Value)
		case "write":
			return "write(" + showVal(in.Value) + ")"
		default:
			res := "?"
			if out.Applied == 1 {
				res = "applied"
			} else if out.Applied == 0 {
				res = "not applied"
			}
			return fmt.Sprintf("cas(%s -> %s) %s", showVal(in.Expect), showVal(in.Value), res)
		}
	},
	DescribeState: func(state interface{}) string { return showVal(state.(int64)) },
}

type Row struct {
	Nemesis   string  `json:"nemesis"`
	Ops       int     `json:"ops"`
	Ok        int     `json:"ok"`
	Fail      int     `json:"fail"`
	Info      int     `json:"info"`
	Avail     float64 `json:"availability"`
	Reads     int     `json:"reads_ok"`
	Stale     int     `json:"stale_reads"`
	Lin       string  `json:"linearizable"`
	Acked     int     `json:"acked_adds"`
	Lost      int     `json:"lost_writes"`
	Resurrect int     `json:"resurrected"`
	NeverRead int     `json:"never_read"`
	Skipped   bool    `json:"skipped"`
	Note      string  `json:"note"`
	badKeys   map[string]bool
	unkKeys   map[string]bool
	keysSeen  map[string]bool
}

type Summary struct {
	Level        string   `json:"level"`
	Ops          int      `json:"ops"`
	Keys         int      `json:"register_keys"`
	BadKeys      []string `json:"nonlinearizable_keys"`
	UnknownKeys  []string `json:"unknown_keys"`
	Phantoms     int      `json:"phantom_reads"`
	Lost         int      `json:"lost_writes"`
	LostNoSkew   int      `json:"lost_writes_outside_skew"`
	Resurrected  int      `json:"resurrected"`
	NeverRead    int      `json:"never_read"`
	Rows         []*Row   `json:"rows"`
	CheckSeconds float64  `json:"check_seconds"`
	Invalid      bool     `json:"invalid"` // a fault window without operations
	// windows of -availability-nemeses below -min-availability
	Unavailable []string `json:"availability_below"`
}

func main() {
	histPath := flag.String("history", "", "history JSON lines from kvj")
	nemPath := flag.String("nemesis", "", "nemesis windows JSON lines from jepsen/run")
	level := flag.String("level", "", "level label for the report")
	outDir := flag.String("out", ".", "where summary.json, rows.md and visualizations go")
	timeout := flag.Duration("timeout", 60*time.Second, "porcupine budget per key")
	minAvail := flag.Float64("min-availability", 0, "fail (32) below this availability (0..1) in the windows of -availability-nemeses; 0: never")
	availNem := flag.String("availability-nemeses", "", "comma-separated nemeses whose windows -min-availability judges")
	flag.Parse()
	if *histPath == "" {
		fmt.Fprintln(os.Stderr, "checker: -history is required")
		os.Exit(64)
	}
	ops, err := readOps(*histPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checker:", err)
		os.Exit(64)
	}
	var wins []Window
	if *nemPath != "" {
		wins, _ = readWindows(*nemPath)
	}
	start := time.Now()
	sum := check(ops, wins, *level, *outDir, *timeout)
	sum.CheckSeconds = time.Since(start).Seconds()
	judgeAvailability(sum, *minAvail, *availNem)
	os.MkdirAll(*outDir, 0o755)
	b, _ := json.MarshalIndent(sum, "", "  ")
	os.WriteFile(filepath.Join(*outDir, "summary.json"), b, 0o644)
	var md strings.Builder
	for _, r := range sum.Rows {
		avail := fmt.Sprintf("%.1f", 100*r.Avail)
		stale := fmt.Sprintf("%d", r.Stale)
		if r.Reads > 0 {
			stale = fmt.Sprintf("%d (%.1f%%)", r.Stale, 100*float64(r.Stale)/float64(r.Reads))
		}
		lost := fmt.Sprintf("%d / %d", r.Lost, r.Acked)
		if r.Resurrect > 0 {
			lost += fmt.Sprintf(", %d resurrected", r.Resurrect)
		}
		if r.NeverRead > 0 {
			lost += fmt.Sprintf(", %d never read", r.NeverRead)
		}
		if r.Skipped {
			fmt.Fprintf(&md, "| %s | %s | skipped | | | | | %s |\n", sum.Level, r.Nemesis, r.Note)
			continue
		}
		fmt.Fprintf(&md, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", sum.Level, r.Nemesis,
			r.Ops, avail, r.Lin, stale, lost, r.Note)
	}
	os.WriteFile(filepath.Join(*outDir, "rows.md"), []byte(md.String()), 0o644)
	fmt.Print(md.String())
	code := 0
	if len(sum.BadKeys) > 0 {
		code |= 1
		fmt.Fprintf(os.Stderr, "checker: %s: %d key(s) not linearizable: %s (see %s/lin-*.html)\n",
			sum.Level, len(sum.BadKeys), strings.Join(first(sum.BadKeys, 5), " "), *outDir)
	}
	if sum.Lost > 0 {
		code |= 2
	}
	if sum.Resurrected > 0 || sum.Phantoms > 0 {
		code |= 4
	}
	if len(sum.UnknownKeys) > 0 {
		code |= 8
	}
	if len(sum.Unavailable) > 0 {
		code |= 32
		fmt.Fprintf(os.Stderr, "checker: %s: availability below %.1f%% under %s\n", sum.Level,
			100**minAvail, strings.Join(sum.Unavailable, ", "))
	}
	if sum.Invalid {
		code |= 16
		fmt.Fprintf(os.Stderr, "checker: %s: a fault window had no operations: the run proves nothing there\n", sum.Level)
	}
	os.Exit(code)
}

// judgeAvailability lists (and notes in their rows) the windows of the nemeses named in
// list whose availability is below min.
func judgeAvailability(sum *Summary, min float64, list string) {
	if min <= 0 || list == "" {
		return
	}
	judged := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		judged[strings.TrimSpace(n)] = true
	}
	for _, r := range sum.Rows {
		if !judged[r.Nemesis] || r.Skipped || r.Ops == 0 || r.Avail >= min {
			continue
		}
		sum.Unavailable = append(sum.Unavailable, fmt.Sprintf("%s (%.1f%%)", r.Nemesis, 100*r.Avail))
		r.Note = strings.TrimSpace(r.Note + fmt.Sprintf(" availability below %.0f%%: FAIL", 100*min))
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func readOps(path string) ([]*Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []*Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var o Op
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			continue // a torn last line of a killed run
		}
		ops = append(ops, &o)
	}
	return ops, sc.Err()
}

func readWindows(path string) ([]Window, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ws []Window
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var w Window
		if json.Unmarshal(sc.Bytes(), &w) == nil {
			ws = append(ws, w)
		}
	}
	return ws, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

func check(ops []*Op, wins []Window, level, outDir string, timeout time.Duration) *Summary {
	sum := &Summary{Level: level}
	rows := map[string]*Row{}
	var order []string
	row := func(name string) *Row {
		r, ok := rows[name]
		if !ok {
			r = &Row{Nemesis: name, badKeys: map[string]bool{}, unkKeys: map[string]bool{},
				keysSeen: map[string]bool{}}
			rows[name] = r
			order = append(order, name)
		}
		return r
	}
	row("none")
	for _, w := range wins {
		r := row(w.Nemesis)
		if w.Skipped {
			r.Skipped = true
		}
		if w.Note != "" {
			r.Note = w.Note
		}
	}
	var maxRet int64
	for _, o := range ops {
		if o.ReturnNs > maxRet {
			maxRet = o.ReturnNs
		}
		o.window = "none"
		for _, w := range wins {
			if !w.Skipped && o.CallNs >= w.StartNs && o.CallNs < w.EndNs {
				o.window = w.Nemesis
				break
			}
		}
	}
	// Availability over every client operation (final reads excluded: they retry). A CAS is
	// Paxos among a majority whatever level the run is at, so at the weak levels it is left
	// out: a minority side refusing a CAS says nothing about ONE's availability.
	casAvail := strings.HasPrefix(level, "linearizable")
	for _, o := range ops {
		if o.F == "final-read" || o.Node == 0 || (o.F == "cas" && !casAvail) {
			continue
		}
		r := row(o.window)
		r.Ops++
		switch o.Status {
		case "ok":
			r.Ok++
		case "fail":
			r.Fail++
		default:
			r.Info++
		}
		sum.Ops++
	}
	// Register: by key.
	byKey := map[string][]*Op{}
	for _, o := range ops {
		if o.Workload == "register" {
			byKey[o.Key] = append(byKey[o.Key], o)
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sum.Keys = len(keys)
	for _, k := range keys {
		kops := byKey[k]
		for _, o := range kops {
			row(o.window).keysSeen[k] = true
		}
		// Phantoms and stale reads.
		writes := map[int64]*Op{}
		var acked []*Op
		for _, o := range kops {
			if o.F == "write" || o.F == "cas" {
				writes[val(o.Value)] = o
				if o.Status == "ok" && (o.F == "write" || (o.Applied != nil && *o.Applied)) {
					acked = append(acked, o)
				}
			}
		}
		for _, o := range kops {
			if o.F != "read" || o.Status != "ok" {
				continue
			}
			v := val(o.Value)
			var src *Op
			if v >= 0 {
				var ok bool
				src, ok = writes[v]
				if !ok {
					sum.Phantoms++
					continue
				}
			}
			r := row(o.window)
			if o.Node != 0 {
				r.Reads++
			}
			for _, w := range acked {
				if w.ReturnNs < o.CallNs && w != src && (src == nil || src.ReturnNs < w.CallNs) {
					if o.Node != 0 {
						r.Stale++
					}
					break
				}
			}
		}
		// Linearizability.
		clients := map[int]int{}
		var hist []porcupine.Operation
		for _, o := range kops {
			if o.Status == "fail" || (o.Status != "ok" && o.F == "read") {
				continue
			}
			cid, ok := clients[o.Client]
			if !ok {
				cid = len(clients)
				clients[o.Client] = cid
			}
			in := regInput{F: o.F, Value: val(o.Value), Expect: val(o.Expect)}
			out := regOutput{Value: val(o.Value), Applied: -1}
			if o.Applied != nil {
				out.Applied = 0
				if *o.Applied {
					out.Applied = 1
				}
			}
			ret := o.ReturnNs
			if o.Status != "ok" {
				ret = maxRet + 1_000_000_000
				out.Applied = -1
			}
			hist = append(hist, porcupine.Operation{ClientId: cid, Input: in, Call: o.CallNs,
				Output: out, Return: ret})
		}
		if len(hist) == 0 {
			continue
		}
		res, info := porcupine.CheckOperationsVerbose(registerModel, hist, timeout)
		if res == porcupine.Ok {
			continue
		}
		for _, o := range kops {
			if res == porcupine.Illegal {
				row(o.window).badKeys[k] = true
			} else {
				row(o.window).unkKeys[k] = true
			}
		}
		if res == porcupine.Illegal {
			sum.BadKeys = append(sum.BadKeys, k)
			if len(sum.BadKeys) <= 5 {
				p := filepath.Join(outDir, "lin-"+unsafeName.ReplaceAllString(k, "_")+".html")
				os.MkdirAll(outDir, 0o755)
				if err := porcupine.VisualizePath(registerModel, info, p); err != nil {
					fmt.Fprintln(os.Stderr, "checker: visualization:", err)
				}
			}
		} else {
			sum.UnknownKeys = append(sum.UnknownKeys, k)
		}
	}
	// Set: acknowledged adds against the final reads.
	final := map[string]*Op{}
	for _, o := range ops {
		if o.Workload == "set" && o.F == "final-read" {
			final[o.Key] = o
		}
	}
	for _, o := range ops {
		if o.Workload != "set" || o.F != "add" {
			continue
		}
		r := row(o.window)
		fr := final[o.Key]
		found, readOK := false, false
		if fr != nil && fr.Status == "ok" {
			readOK = true
			found = fr.Value != nil && val(fr.Value) == val(o.Value)
			if fr.Value != nil && val(fr.Value) != val(o.Value) {
				sum.Phantoms++
			}
		}
		switch o.Status {
		case "ok":
			r.Acked++
			if !readOK {
				r.NeverRead++
				sum.NeverRead++
			} else if !found {
				r.Lost++
				sum.Lost++
				if o.window != "skew" {
					sum.LostNoSkew++
				}
			}
		case "fail":
			if found {
				r.Resurrect++
				sum.Resurrected++
			}
		}
	}
	for _, name := range order {
		r := rows[name]
		if r.Ops > 0 {
			r.Avail = float64(r.Ok) / float64(r.Ops)
		} else {
			r.Avail = math.NaN()
			r.Avail = 0
		}
		if !r.Skipped && r.Nemesis != "none" && r.Ops == 0 {
			r.Note = strings.TrimSpace(r.Note + " no operations in this window: invalid")
			sum.Invalid = true
		}
		switch {
		case r.Skipped:
		case len(r.badKeys) > 0:
			r.Lin = fmt.Sprintf("NO (%d keys)", len(r.badKeys))
		case len(r.unkKeys) > 0:
			r.Lin = fmt.Sprintf("unknown (%d keys)", len(r.unkKeys))
		case len(r.keysSeen) == 0:
			r.Lin = "n/a"
		default:
			r.Lin = "yes"
		}
		sum.Rows = append(sum.Rows, r)
	}
	return sum
}
