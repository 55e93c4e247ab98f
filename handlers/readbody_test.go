package handlers

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBodyTakesABytesReadersBytesWithoutACopy(t *testing.T) {
	src := []byte(`{"endpoint_id":"ep_1","payload":{"a":1}}`)
	got, err := readBody(bytes.NewReader(src), 0)
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("readBody = %q, %v; want %q", got, err, src)
	}
	if &got[0] != &src[0] {
		t.Error("the bytes were copied")
	}
	// A reader partly read already gives what is left.
	br := bytes.NewReader(src)
	if _, err := br.Read(make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if got, err := readBody(br, 0); err != nil || !bytes.Equal(got, src[5:]) {
		t.Fatalf("readBody after 5 bytes = %q, %v; want %q", got, err, src[5:])
	}
	if got, err := readBody(bytes.NewReader(nil), 0); err != nil || len(got) != 0 {
		t.Fatalf("readBody(empty) = %q, %v", got, err)
	}
}

func TestReadBodyReadsWhateverTheSizeSays(t *testing.T) {
	body := strings.Repeat("0123456789", 150)
	for _, c := range []struct {
		name string
		size int64
	}{
		{"size unknown", 0},
		{"size exact", int64(len(body))},
		{"body longer than its size", 700},
		{"body shorter than its size", int64(len(body)) + 300},
		{"size one short", int64(len(body)) - 1},
		{"size over the preallocation", readBodyPrealloc + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			// OneByteReader: the reader is no bytes.Reader, and reads come
			// in the smallest pieces.
			got, err := readBody(iotest.OneByteReader(strings.NewReader(body)), c.size)
			if err != nil || string(got) != body {
				t.Fatalf("readBody = %d bytes, %v; want the %d bytes", len(got), err, len(body))
			}
		})
	}
}

func TestReadBodyOfAKnownSizeAllocatesItOnce(t *testing.T) {
	body := strings.Repeat("x", 1200)
	r := strings.NewReader(body)
	rc := io.NopCloser(r) // as the validator puts a body back: no *bytes.Reader
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if b, err := readBody(rc, int64(len(body))); err != nil || len(b) != len(body) {
			t.Fatalf("readBody = %d bytes, %v", len(b), err)
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations a read; want 1", allocs)
	}
}

func TestReadBodyReservesNoMoreThanArrivesForALargeSize(t *testing.T) {
	// A Content-Length of 1 MiB and ten bytes sent: the buffer is bounded
	// by readBodyPrealloc, not by what the client announced.
	b, err := readBody(iotest.OneByteReader(strings.NewReader("0123456789")), MaxIngestBodyBytes)
	if err != nil || string(b) != "0123456789" {
		t.Fatalf("readBody = %q, %v", b, err)
	}
	if cap(b) > readBodyPrealloc+1 {
		t.Errorf("buffer of %d bytes for a 10-byte body; want at most %d", cap(b), readBodyPrealloc+1)
	}
}

func TestReadBodyRefusesABodyCutShort(t *testing.T) {
	// net/http's server body gives io.ErrUnexpectedEOF when the client goes
	// away before sending its Content-Length: that is no complete body.
	for _, size := range []int64{0, 3, 10, 100} {
		r := io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF))
		if b, err := readBody(r, size); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("size %d: readBody = %q, %v; want io.ErrUnexpectedEOF", size, b, err)
		}
	}
	// Through the ingest route's limit too.
	r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrUnexpectedEOF))), 1000)
	if _, err := readBody(r, 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("behind MaxBytesReader: err = %v; want io.ErrUnexpectedEOF", err)
	}
}

func TestReadBodyPassesErrorsOn(t *testing.T) {
	boom := errors.New("connection reset")
	for _, size := range []int64{0, 10, 100} {
		r := io.MultiReader(strings.NewReader("0123456789abcdef"), iotest.ErrReader(boom))
		if _, err := readBody(r, size); !errors.Is(err, boom) {
			t.Errorf("size %d: err = %v; want %v", size, err, boom)
		}
	}
	// The ingest route's limit still refuses a body over it.
	rec := httptest.NewRecorder()
	r := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(strings.Repeat("x", 2000))), 1000)
	var tooBig *http.MaxBytesError
	if _, err := readBody(r, 500); !errors.As(err, &tooBig) {
		t.Errorf("over the limit: err = %v; want *http.MaxBytesError", err)
	}
}
