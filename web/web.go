// Package web serves Guildhall's browser client: the single-page app built
// from web/app with Vite, embedded in the binary so `go run ./cmd/guildhall`
// needs no Node. The bundle in dist/ is committed; web/test.sh fails when it
// is stale (web/scripts/check-stale.mjs rebuilds it and compares).
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// csp allows the app's own scripts and styles, its API and gateway (same
// origin, ws included), inline style attributes and data: images (the
// favicon), and no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"

// Handler serves the web client. Files of the bundle are served as they are:
// hashed assets under /assets/ are cached for a year (their names change
// with their content), everything else must be revalidated. Any other GET
// path without a file extension is a client-side route and gets index.html.
// Paths under /api/ and /gateway that reach it are answered 404.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist exists
	}
	files := http.FileServer(http.FS(root))
	index, _ := fs.ReadFile(root, "index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean("/" + r.URL.Path)
		if p == "/api" || strings.HasPrefix(p, "/api/") || p == "/gateway" || strings.HasPrefix(p, "/gateway/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		name := strings.TrimPrefix(p, "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(root, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					w.Header().Set("Cache-Control", "no-cache")
				}
				files.ServeHTTP(w, r)
				return
			}
			if path.Ext(name) != "" {
				// a missing file, not a route: never answer it with the app
				w.Header().Set("Cache-Control", "no-cache")
				http.NotFound(w, r)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Referrer-Policy", "same-origin")
		w.Header().Set("Content-Security-Policy", csp)
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(index)
	})
}
