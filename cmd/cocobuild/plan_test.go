package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
)

// TestPlanSampleListsPublish: the sample's plan (from an empty cache, so
// nothing is built and nothing runs) has a line for every block of the
// recipe, and the publish block's post-build step, which every build runs,
// is listed with its status and reason in --json and in the text.
func TestPlanSampleListsPublish(t *testing.T) {
	cache := t.TempDir()
	code, stdout, stderr := runCLI(t, "plan", "--json", "--cache-dir", cache, sampleRecipe)
	if code != 0 {
		t.Fatalf("plan --json: exit %d\n%s", code, stderr)
	}
	var plan struct {
		ToRun int                  `json:"to_run"`
		Steps []builder.StepReport `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var publish []builder.StepReport
	for _, s := range plan.Steps {
		if len(blocks) == 0 || blocks[len(blocks)-1] != s.Block {
			blocks = append(blocks, s.Block)
		}
		if s.Kind == "publish" {
			publish = append(publish, s)
		}
	}
	// The sample's blocks, in recipe order.
	wantBlocks := []string{"input.linux_source", "input.ovmf_amdsev", "input.ovmf_tdx", "rootfs.root", "disk.guest", "kernel.guest",
		"initramfs.agent", "measure.snp", "measure.tdx", "publish.sample"}
	if diff := cmp.Diff(wantBlocks, blocks); diff != "" {
		t.Errorf("blocks in the plan (-want +got):\n%s", diff)
	}
	wantPublish := []builder.StepReport{{Block: "publish.sample", Step: "post-build", Kind: "publish", Status: builder.StatusAlways,
		Reason: "works on the whole build once every step is done; not cached, it runs on every build"}}
	if diff := cmp.Diff(wantPublish, publish); diff != "" {
		t.Errorf("publish steps (-want +got):\n%s", diff)
	}
	code, stdout, stderr = runCLI(t, "plan", "--cache-dir", cache, sampleRecipe)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	found := false
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[0] == "always" && f[1] == "publish.sample:post-build" && f[2] == "publish" &&
			strings.Contains(line, "not cached, it runs on every build") {
			found = true
		}
	}
	if !found {
		t.Errorf("plan text lacks the publish step:\n%s", stdout)
	}
}
