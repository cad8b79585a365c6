// Command checkcontract checks two of issue 13's "Done when" conditions
// mechanically (make check-contract, part of make verify):
//
//   - no controller names a mesh or imports a mesh package: no non-test Go
//     file under controllers/ outside controllers/meshrevision (which is
//     Istio-only and may import internal/mesh/istio) matches
//     `mesh/(istio|linkerd|cilium)"|Provider(Istio|Linkerd|Cilium)`;
//   - no two controller packages share a run of more than -max identical or
//     same-shape lines in their non-test, non-generated Go files.
//
// Lines are compared after normalising: blank lines and comments are
// dropped and each remaining line becomes its Go tokens, so indentation and
// comments do not hide a copy. Same shape means equal once every identifier
// and literal is replaced by a placeholder (a copy with the kind renamed).
package main

import (
	"flag"
	"fmt"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// meshPattern is the grep of issue 13's "Done when".
var meshPattern = regexp.MustCompile(`mesh/(istio|linkerd|cilium)"|Provider(Istio|Linkerd|Cilium)`)

// meshAllowed are the controller packages that may name a mesh.
var meshAllowed = []string{"meshrevision"}

func main() {
	root := flag.String("root", ".", "repository root")
	maxRun := flag.Int("max", 10, "longest run of identical or same-shape lines two controller packages may share")
	flag.Parse()
	dir := filepath.Join(*root, "controllers")
	failed := false
	leaks, err := meshLeaks(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if len(leaks) > 0 {
		failed = true
		fmt.Fprintf(os.Stderr, "controllers that name a mesh or import a mesh package (move it behind internal/mesh):\n")
		for _, l := range leaks {
			fmt.Fprintf(os.Stderr, "  %s\n", l)
		}
	}
	pkgs, err := loadPackages(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	dups := duplicates(pkgs, *maxRun)
	if len(dups) > 0 {
		failed = true
		fmt.Fprintf(os.Stderr, "controller packages sharing more than %d identical or same-shape lines (move the code to one place):\n", *maxRun)
		for _, d := range dups {
			fmt.Fprintf(os.Stderr, "  %s\n", d)
		}
	}
	if failed {
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, ">> check-contract: no mesh names in controllers/ outside %v; no run of more than %d shared lines across %d controller packages\n",
		meshAllowed, *maxRun, len(pkgs))
}

// goFiles calls f for every non-test Go file under dir.
func goFiles(dir string, f func(path string) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		return f(path)
	})
}

// meshLeaks lists the files under dir (controllers/) that match
// meshPattern, outside the packages in meshAllowed.
func meshLeaks(dir string) ([]string, error) {
	var out []string
	err := goFiles(dir, func(path string) error {
		rel, _ := filepath.Rel(dir, path)
		for _, a := range meshAllowed {
			if strings.HasPrefix(filepath.ToSlash(rel), a+"/") {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := meshPattern.Find(b); m != nil {
			out = append(out, fmt.Sprintf("%s (%s)", path, m))
		}
		return nil
	})
	return out, err
}

// line is one normalised line of code.
type line struct {
	file  string
	no    int
	text  string // the line's tokens
	shape string // its tokens with identifiers and literals replaced
}

// loadPackages reads the non-test, non-generated Go files of each package
// under dir, keyed by the package's directory relative to dir.
func loadPackages(dir string) (map[string][][]line, error) {
	pkgs := map[string][][]line{}
	err := goFiles(dir, func(path string) error {
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if generated(src) {
			return nil
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		pkgs[rel] = append(pkgs[rel], normalise(path, src))
		return nil
	})
	return pkgs, err
}

var generatedRE = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

func generated(src []byte) bool { return generatedRE.Match(src) }

// normalise returns the file's lines that hold code, as tokens.
func normalise(path string, src []byte) []line {
	fset := token.NewFileSet()
	f := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	s.Init(f, src, nil, 0) // comments are skipped
	var out []line
	cur := -1
	var text, shape []string
	flush := func() {
		if cur >= 0 && len(text) > 0 {
			out = append(out, line{file: path, no: cur, text: strings.Join(text, " "), shape: strings.Join(shape, " ")})
		}
		text, shape = nil, nil
	}
	skip := header{}
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue // an inserted semicolon, not code
		}
		if skip.header(tok) {
			continue
		}
		if n := f.Line(pos); n != cur {
			flush()
			cur = n
		}
		t := tok.String()
		if lit != "" {
			t = lit
		}
		text = append(text, t)
		switch {
		case tok == token.IDENT:
			shape = append(shape, "ID")
		case tok.IsLiteral():
			shape = append(shape, tok.String())
		default:
			shape = append(shape, t)
		}
	}
	flush()
	return out
}

// header skips the package clause and the imports: they are not code that
// can be copied.
type header struct {
	state int // 0 code, 1 package name next, 2 after import, 3 in an import list, 4 in one import spec
}

// header reports whether tok belongs to the package clause or an import.
func (h *header) header(tok token.Token) bool {
	switch h.state {
	case 1:
		h.state = 0
		return true
	case 2:
		if tok == token.LPAREN {
			h.state = 3
			return true
		}
		h.state = 4
		return h.header(tok)
	case 3:
		if tok == token.RPAREN {
			h.state = 0
		}
		return true
	case 4:
		if tok == token.STRING {
			h.state = 0
		}
		return true
	}
	switch tok {
	case token.PACKAGE:
		h.state = 1
		return true
	case token.IMPORT:
		h.state = 2
		return true
	}
	return false
}

// window is where a run of lines starts.
type window struct {
	pkg  string
	file int
	at   int
}

// duplicates reports each pair of places in different packages that share
// a run of more than maxRun lines, identical or same-shape.
func duplicates(pkgs map[string][][]line, maxRun int) []string {
	n := maxRun + 1
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	// Every window of n lines, by its identical and its same-shape key.
	index := map[string][]window{}
	for _, p := range names {
		for fi, lines := range pkgs[p] {
			for i := 0; i+n <= len(lines); i++ {
				w := window{pkg: p, file: fi, at: i}
				index[windowKey(lines[i:i+n], false)] = append(index[windowKey(lines[i:i+n], false)], w)
				index[windowKey(lines[i:i+n], true)] = append(index[windowKey(lines[i:i+n], true)], w)
			}
		}
	}
	type hit struct{ a, b window }
	set := map[hit]bool{}
	for _, ws := range index {
		for i, a := range ws {
			for _, b := range ws[i+1:] {
				if a.pkg != b.pkg {
					set[hit{a, b}] = true
				}
			}
		}
	}
	hits := make([]hit, 0, len(set))
	for h := range set {
		hits = append(hits, h)
	}
	// Along one diagonal (the same offset between the two places) hits
	// one line apart are one run.
	sort.Slice(hits, func(i, j int) bool {
		x, y := hits[i], hits[j]
		kx := []int{x.a.file, x.b.file, x.a.at - x.b.at, x.a.at}
		ky := []int{y.a.file, y.b.file, y.a.at - y.b.at, y.a.at}
		if x.a.pkg != y.a.pkg || x.b.pkg != y.b.pkg {
			return x.a.pkg+"\x00"+x.b.pkg < y.a.pkg+"\x00"+y.b.pkg
		}
		return slices.Compare(kx, ky) < 0
	})
	var runs []run
	for _, h := range hits {
		if k := len(runs) - 1; k >= 0 {
			r := &runs[k]
			if r.a.pkg == h.a.pkg && r.a.file == h.a.file && r.b.pkg == h.b.pkg && r.b.file == h.b.file &&
				h.a.at-r.a.at == h.b.at-r.b.at && h.a.at <= r.a.at+r.length-n+1 {
				r.length = max(r.length, h.a.at-r.a.at+n)
				continue
			}
		}
		runs = append(runs, run{h.a, h.b, n})
	}
	// The longest run of overlapping ones is the copy; the others are the
	// same lines matched at another offset (lines repeated in a file).
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].length > runs[j].length })
	var shown []run
	for _, r := range runs {
		if !slices.ContainsFunc(shown, r.overlaps) {
			shown = append(shown, r)
		}
	}
	sort.SliceStable(shown, func(i, j int) bool {
		x, y := shown[i], shown[j]
		if x.a.pkg != y.a.pkg || x.b.pkg != y.b.pkg {
			return x.a.pkg+"\x00"+x.b.pkg < y.a.pkg+"\x00"+y.b.pkg
		}
		return slices.Compare([]int{x.a.file, x.a.at}, []int{y.a.file, y.a.at}) < 0
	})
	var out []string
	for _, r := range shown {
		la, lb := pkgs[r.a.pkg][r.a.file], pkgs[r.b.pkg][r.b.file]
		end := r.length - 1
		out = append(out, fmt.Sprintf("%s:%d-%d and %s:%d-%d (%d code lines)",
			la[r.a.at].file, la[r.a.at].no, la[r.a.at+end].no, lb[r.b.at].file, lb[r.b.at].no, lb[r.b.at+end].no, r.length))
	}
	return out
}

// run is a copy: length lines from a in one package and from b in another.
type run struct {
	a, b   window
	length int
}

// overlaps reports whether r and o cover lines of the same two files on
// both sides.
func (r run) overlaps(o run) bool {
	same := r.a.pkg == o.a.pkg && r.a.file == o.a.file && r.b.pkg == o.b.pkg && r.b.file == o.b.file
	return same && r.a.at < o.a.at+o.length && o.a.at < r.a.at+r.length && r.b.at < o.b.at+o.length && o.b.at < r.b.at+r.length
}

func windowKey(lines []line, shape bool) string {
	var b strings.Builder
	if shape {
		b.WriteString("shape\x00")
	}
	for _, l := range lines {
		if shape {
			b.WriteString(l.shape)
		} else {
			b.WriteString(l.text)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
