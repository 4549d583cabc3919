// Command gotests reads Go test files (one path per argument) and prints one JSON line per file:
// its test functions as `go test` finds them, and whether the program means the same as a package
// of a shared test binary (see go.py, build_go_shared).
//
//	{"file": "...", "tests": ["TestA", ...], "name_at": 8, "alone": ""}
//
// name_at is the byte offset of the package name in the package clause. alone is empty when the
// program may share a binary, else why not: anything `go test` treats specially (TestMain, a test
// with a wrong signature, benchmarks, examples, fuzz targets), anything that runs before a test
// starts (init, package-level initialisers that call or receive: in a shared binary they would run
// for every program), anything meaning something else outside package main (a declaration named
// main), and what reaches outside the language (cgo, unsafe, embed, //go: directives, build tags).
package main

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type facts struct {
	File   string   `json:"file"`
	Tests  []string `json:"tests"`
	NameAt int      `json:"name_at"`
	Alone  string   `json:"alone"`
}

// isTest is the go command's rule: the prefix alone, or followed by a rune that is not lower case.
func isTest(name, prefix string) bool {
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	if len(name) == len(prefix) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(name[len(prefix):])
	return !unicode.IsLower(r)
}

// isTestFunc is the go command's signature check: func(*T) or func(*x.T), no results, no type parameters.
func isTestFunc(fn *ast.FuncDecl) bool {
	params := fn.Type.Params.List
	if fn.Type.TypeParams != nil || (fn.Type.Results != nil && len(fn.Type.Results.List) > 0) ||
		len(params) != 1 || len(params[0].Names) > 1 {
		return false
	}
	ptr, ok := params[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	if name, ok := ptr.X.(*ast.Ident); ok && name.Name == "T" {
		return true
	}
	sel, ok := ptr.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "T"
}

// runsAtInit reports whether evaluating expr can do more than build a value: a call (or a
// conversion, which reads the same) or a channel receive. Function literals are not entered: their
// bodies run only when called.
func runsAtInit(expr ast.Expr) bool {
	found := false
	ast.Inspect(expr, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.CallExpr:
			found = true
		case *ast.UnaryExpr:
			found = found || n.Op == token.ARROW
		}
		return !found
	})
	return found
}

func declaredNames(decl *ast.GenDecl) []string {
	var names []string
	for _, spec := range decl.Specs {
		switch s := spec.(type) {
		case *ast.ValueSpec:
			for _, id := range s.Names {
				names = append(names, id.Name)
			}
		case *ast.TypeSpec:
			names = append(names, s.Name.Name)
		}
	}
	return names
}

func inspect(path string) facts {
	f := facts{File: path, Tests: []string{}}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		f.Alone = "does not parse"
		return f
	}
	f.NameAt = fset.Position(file.Name.Pos()).Offset
	if file.Name.Name != "main" {
		f.Alone = "package " + file.Name.Name
		return f
	}
	for _, imp := range file.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "C" || p == "unsafe" || p == "embed" {
			f.Alone = "imports " + p
			return f
		}
	}
	for _, group := range file.Comments {
		for _, c := range group.List {
			if strings.HasPrefix(c.Text, "//go:") || strings.Contains(c.Text, "+build") || strings.HasPrefix(c.Text, "//line") {
				f.Alone = "directive " + strings.Fields(c.Text)[0]
				return f
			}
		}
	}
	for _, decl := range file.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			switch {
			case d.Recv != nil:
			case name == "main" || name == "init" || name == "TestMain":
				f.Alone = "func " + name
			case isTest(name, "Test"):
				if !isTestFunc(d) {
					f.Alone = "test signature " + name
				}
				f.Tests = append(f.Tests, name)
			case isTest(name, "Benchmark") || isTest(name, "Example") || isTest(name, "Fuzz"):
				f.Alone = "func " + name
			}
		case *ast.GenDecl:
			for _, name := range declaredNames(d) {
				if name == "main" || name == "init" {
					f.Alone = "declares " + name
				}
			}
			for _, spec := range d.Specs {
				if s, ok := spec.(*ast.ValueSpec); ok && d.Tok == token.VAR {
					for _, value := range s.Values {
						if runsAtInit(value) {
							f.Alone = "package-level initialiser runs code"
						}
					}
				}
			}
		}
		if f.Alone != "" {
			return f
		}
	}
	return f
}

func main() {
	out := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[1:] {
		if err := out.Encode(inspect(path)); err != nil {
			os.Exit(1)
		}
	}
}
