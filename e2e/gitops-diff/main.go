// gitops-diff compares manifests with the live objects the way Argo CD's application controller
// does, with gitops-engine's pkg/diff (the library Argo CD diffs with, at the version Argo CD
// v3.2 pins), and exits 1 when any object would show OutOfSync.
//
//	kubectl get -n NS -f config/samples -o json > live.json
//	gitops-diff -namespace NS -live live.json config/samples
//	gitops-diff -namespace NS -live live.json -structured-merge -kubeconfig KUBECONFIG config/samples
//
// Without -structured-merge it is Argo CD's default diff (three-way with the last-applied
// annotation, else two-way). With it, the diff Argo CD makes for an application synced with
// ServerSideApply=true when ServerSideDiff is off: structured-merge-diff's apply as manager
// -manager, with the types read from the cluster's OpenAPI schema as Argo CD reads them.
//
// Desired objects come from YAML or JSON files (multi-document; a directory means its *.yaml,
// *.yml and *.json files), read as kubectl reads them. Each is matched with the live object of
// the same group, kind, namespace and name; a missing live object counts as a difference.
// Exit status: 0 in sync, 1 a difference (printed as a unified diff), 2 a usage or input error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/argoproj/gitops-engine/pkg/diff"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
	"github.com/argoproj/gitops-engine/pkg/utils/tracing"
	"github.com/go-logr/logr"
	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

func main() {
	namespace := flag.String("namespace", "default", "namespace of desired objects that name none")
	livePath := flag.String("live", "", "live objects: a JSON List or object, as `kubectl get -o json` prints (- for stdin)")
	structured := flag.Bool("structured-merge", false, "Argo CD's diff for ServerSideApply=true applications (needs -kubeconfig)")
	kubeconfig := flag.String("kubeconfig", "", "cluster whose OpenAPI schema types the objects (with -structured-merge)")
	manager := flag.String("manager", "argocd-controller", "field manager Argo CD applies as (with -structured-merge)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s -live FILE [-namespace NS] [-structured-merge -kubeconfig FILE] MANIFEST_FILE_OR_DIR...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if *livePath == "" || flag.NArg() == 0 || (*structured && *kubeconfig == "") {
		flag.Usage()
		os.Exit(2)
	}
	desired, err := readManifests(flag.Args())
	if err != nil {
		fail(err)
	}
	live, err := readLive(*livePath)
	if err != nil {
		fail(err)
	}
	options := []diff.Option{diff.WithNormalizer(diff.GetNoopNormalizer())}
	if *structured {
		config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			fail(err)
		}
		// What Argo CD's cluster cache does: the GVK parser from the apiserver's OpenAPI v2 document.
		kubectl := &kube.KubectlCmd{Log: logr.Discard(), Tracer: tracing.NopTracer{}}
		_, parser, err := kubectl.LoadOpenAPISchema(config)
		if err != nil {
			fail(err)
		}
		options = append(options, diff.WithStructuredMergeDiff(true), diff.WithGVKParser(parser), diff.WithManager(*manager))
	}
	differences := 0
	for _, config := range desired {
		if config.GetNamespace() == "" {
			config.SetNamespace(*namespace)
		}
		id := identity(config)
		liveObject, found := live[id]
		if !found {
			fmt.Printf("%s: no live object\n", id)
			differences++
			continue
		}
		result, err := diff.Diff(config, liveObject, options...)
		if err != nil {
			fail(fmt.Errorf("%s: %w", id, err))
		}
		if !result.Modified {
			fmt.Printf("%s: in sync\n", id)
			continue
		}
		differences++
		fmt.Printf("%s: OutOfSync\n%s", id, unified(result.NormalizedLive, result.PredictedLive))
	}
	fmt.Printf("%d objects, %d out of sync\n", len(desired), differences)
	if differences > 0 {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "gitops-diff: %v\n", err)
	os.Exit(2)
}

// identity is what Argo CD matches a manifest and a live object by.
func identity(u *unstructured.Unstructured) string {
	gvk := u.GroupVersionKind()
	return fmt.Sprintf("%s/%s %s/%s", gvk.Group, gvk.Kind, u.GetNamespace(), u.GetName())
}

func readManifests(paths []string) ([]*unstructured.Unstructured, error) {
	var files []string
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, path)
			continue
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, entry := range entries {
			switch filepath.Ext(entry.Name()) {
			case ".yaml", ".yml", ".json":
				files = append(files, filepath.Join(path, entry.Name()))
			}
		}
	}
	sort.Strings(files)
	var objects []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		// The decoder kubectl uses: YAML 1.1 documents converted to JSON.
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var object map[string]any
			if err := decoder.Decode(&object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if len(object) == 0 {
				continue
			}
			objects = append(objects, &unstructured.Unstructured{Object: object})
		}
	}
	return objects, nil
}

func readLive(path string) (map[string]*unstructured.Unstructured, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	items := []any{top}
	if list, ok := top["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(top["kind"]), "List") {
		items = list
	}
	live := map[string]*unstructured.Unstructured{}
	for _, item := range items {
		object, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: an item is not an object", path)
		}
		u := &unstructured.Unstructured{Object: object}
		live[identity(u)] = u
	}
	return live, nil
}

// unified renders both sides as YAML and diffs them, live first, as `argocd app diff` does.
func unified(liveJSON, predictedJSON []byte) string {
	toYAML := func(data []byte) string {
		out, err := yaml.JSONToYAML(data)
		if err != nil {
			return string(data) + "\n"
		}
		return string(out)
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(toYAML(liveJSON)),
		B:        difflib.SplitLines(toYAML(predictedJSON)),
		FromFile: "live",
		ToFile:   "desired",
		Context:  3,
	})
	if err != nil {
		return err.Error() + "\n"
	}
	return text
}
