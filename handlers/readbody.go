package handlers

import (
	"bytes"
	"errors"
	"io"
)

// readBody reads a request body whole, without the copies io.ReadAll makes
// as it grows its buffer from 512 bytes (for a 1 KB send, 2 KB allocated
// and copied in three steps, on every read of the body):
//   - a *bytes.Reader, which the validator hands its body decoder, gives up
//     the bytes it reads from without a copy (its WriteTo passes them in one
//     Write); nothing writes to them, as nothing writes to the validator's;
//   - a body whose size is known (the request's Content-Length, which the
//     validator sets when it puts the body back) is read into one buffer of
//     that size, up to readBodyPrealloc: beyond that the buffer grows as
//     bytes arrive, so a Content-Length alone does not reserve memory.
//
// size only sizes the buffer: a body longer or shorter than it is still
// read whole. Only io.EOF ends a body; any other error, such as the
// io.ErrUnexpectedEOF of a client that went away before sending all it
// announced, is returned.
func readBody(r io.Reader, size int64) ([]byte, error) {
	if br, ok := r.(*bytes.Reader); ok {
		var w aliasWriter
		if _, err := br.WriteTo(&w); err != nil {
			return nil, err
		}
		return w.b, nil
	}
	n := 512
	if size > 0 {
		// One more byte: the read that finds the end needs no growth.
		n = int(min(size, readBodyPrealloc)) + 1
	}
	b := make([]byte, 0, n)
	for {
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// readBodyPrealloc is the most readBody allocates before the bytes arrive.
const readBodyPrealloc = 64 << 10

// aliasWriter keeps the slice of a bytes.Reader's single Write: only for
// readers whose bytes stay unchanged (see readBody).
type aliasWriter struct{ b []byte }

func (w *aliasWriter) Write(p []byte) (int, error) {
	if w.b == nil {
		w.b = p[:len(p):len(p)]
	} else {
		w.b = append(w.b, p...)
	}
	return len(p), nil
}
