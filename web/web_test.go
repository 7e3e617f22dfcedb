package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/index.html", "/login", "/channels/1/2", "/servers/1/settings/roles", "/invite/abc-DEF"} {
		rec := get(t, h, "GET", p)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `<div id="app">`) {
			t.Errorf("GET %s: %d, want the app's index.html", p, rec.Code)
		}
		if !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors") {
			t.Errorf("GET %s: no Content-Security-Policy", p)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", p, cc)
		}
	}
	assets, err := fs.Glob(dist, "dist/assets/*.js")
	if err != nil || len(assets) == 0 {
		t.Fatalf("no JS asset embedded: %v", err)
	}
	asset := strings.TrimPrefix(assets[0], "dist")
	rec := get(t, h, "GET", asset)
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "javascript") {
		t.Errorf("GET %s: %d %q", asset, rec.Code, rec.Header().Get("Content-Type"))
	}
	if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("GET %s: Cache-Control %q, want immutable", asset, cc)
	}
	for _, p := range []string{"/assets/missing.js", "/favicon.ico", "/api/v2/x", "/gateway/x"} {
		if rec := get(t, h, "GET", p); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	if rec := get(t, h, "POST", "/login"); rec.Code != 405 {
		t.Errorf("POST /login: %d, want 405", rec.Code)
	}
	if rec := get(t, h, "HEAD", "/channels/1"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, body %d bytes", rec.Code, rec.Body.Len())
	}
}
