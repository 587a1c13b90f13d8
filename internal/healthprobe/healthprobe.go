// Package healthprobe lets a binary probe its own health endpoint (`tim-control -healthcheck URL`), so
// that container health checks work in images that carry no shell and no curl.
package healthprobe

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Probe asks url once and reports an error unless it answers 200 within timeout.
func Probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
