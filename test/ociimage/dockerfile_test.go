package ociimage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// finalStage returns the instructions of the Dockerfile's last stage, one
// string per instruction with continuation lines joined and comments dropped.
func finalStage(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the Dockerfile: %v", err)
	}
	var stage []string
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		if cur == "" {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(cur), "FROM ") {
			stage = nil
		}
		stage = append(stage, cur)
		cur = ""
	}
	return stage
}

// TestBuilderAgreesWithDockerfile reads the USER, ENTRYPOINT, LABEL and COPY
// lines of the Dockerfile's final stage and compares them with what Build
// puts in the image, so `make image` and `docker build` cannot drift apart.
func TestBuilderAgreesWithDockerfile(t *testing.T) {
	stage := finalStage(t, filepath.Join("..", "..", "Dockerfile"))
	var user string
	var entrypoint, copies []string
	labels := map[string]string{}
	for _, ins := range stage {
		keyword, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(keyword) {
		case "USER":
			user = rest
		case "ENTRYPOINT":
			entrypoint = nil
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %s is not the JSON (exec) form: %v", rest, err)
			}
		case "LABEL":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Errorf("LABEL %q: want key=value pairs", rest)
					continue
				}
				labels[k] = strings.Trim(v, `"`)
			}
		case "COPY":
			f := strings.Fields(rest)
			copies = append(copies, f[len(f)-1])
		case "FROM", "ARG":
		default:
			t.Errorf("the Dockerfile's final stage has %s, which the builder does not know: teach test/ociimage and this test", keyword)
		}
	}
	if user != User {
		t.Errorf("Dockerfile USER %q, builder %q", user, User)
	}
	if diff := cmp.Diff(Entrypoint(), entrypoint); diff != "" {
		t.Errorf("ENTRYPOINT (-builder +Dockerfile):\n%s", diff)
	}
	if diff := cmp.Diff(Labels("${VERSION}", "${GIT_COMMIT}"), labels); diff != "" {
		t.Errorf("LABEL (-builder +Dockerfile, values as the Dockerfile's build args):\n%s", diff)
	}
	if diff := cmp.Diff([]string{BinaryPath}, copies); diff != "" {
		t.Errorf("COPY destinations (-builder +Dockerfile):\n%s", diff)
	}
}
