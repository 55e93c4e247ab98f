package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// dashboardPath is the Grafana dashboard shipped in docs/.
const dashboardPath = "../docs/grafana-dashboard.json"

// metricName finds the metric names in a PromQL expression or a Grafana
// variable query: hookd's own and those of the Go and process collectors.
var metricName = regexp.MustCompile(`\b(?:hookd|go|process)_[a-zA-Z0-9_]+`)

// queries returns every PromQL text in the dashboard: panel targets
// ("expr") and variable queries ("definition").
func queries(v any, out *[]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
			}
			queries(x, out)
		}
	case []any:
		for _, x := range t {
			queries(x, out)
		}
	}
}

// TestGrafanaDashboardMatchesTheMetrics: the dashboard is valid JSON with
// a Prometheus data-source variable that every panel uses, uses only
// metric names hookd exports (so it cannot drift from the code), and
// shows every hookd_ metric.
func TestGrafanaDashboardMatchesTheMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Title)
	require.NotEmpty(t, dash.UID)

	var hasDatasource bool
	for _, v := range dash.Templating.List {
		if v.Name == "datasource" {
			require.Equal(t, "datasource", v.Type)
			require.Equal(t, "prometheus", v.Query)
			hasDatasource = true
		}
	}
	require.True(t, hasDatasource, "a ${datasource} variable of type datasource")

	ids := map[int]bool{}
	for _, p := range dash.Panels {
		require.False(t, ids[p.ID], "panel id %d is used twice", p.ID)
		ids[p.ID] = true
		require.NotEmpty(t, p.Title)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, p.Title)
		}
	}

	m, _ := exercised(t)
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	exported := map[string]bool{}
	var ours []string
	for _, f := range fams {
		exported[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+suffix] = true
			}
		}
		if strings.HasPrefix(f.GetName(), "hookd_") {
			ours = append(ours, f.GetName())
		}
	}

	var generic any
	require.NoError(t, json.Unmarshal(raw, &generic))
	var all []string
	queries(generic, &all)
	require.NotEmpty(t, all)
	used := map[string]bool{}
	for _, q := range all {
		for _, name := range metricName.FindAllString(q, -1) {
			require.True(t, exported[name], "the dashboard uses %s, which hookd does not export (in %q)", name, q)
			used[name] = true
		}
	}
	sort.Strings(ours)
	for _, name := range ours {
		shown := used[name] || used[name+"_bucket"] || used[name+"_count"]
		require.True(t, shown, "the dashboard does not show %s", name)
	}
}
