package rootfs

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/cocobuild/cocobuild/internal/derive"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs/verity"
)

// metaResult reads the verity result back from a step's metadata (which
// went through JSON in the cache).
func metaResult(meta map[string]any) (*verity.Result, error) {
	raw, ok := meta["verity"]
	if !ok {
		return nil, fmt.Errorf("verity step result has no parameters")
	}
	var r verity.Result
	if err := remarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("verity step result: %w", err)
	}
	return &r, nil
}

// Finish implements recipes.Node.
func (n *node) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	addr := "rootfs." + n.name
	imgRes := results["image"]
	img, err := imgRes.File(n.imageName())
	if err != nil {
		return nil, err
	}
	img.Origin = addr
	tarArt, err := results["tree"].File("tree.tar")
	if err != nil {
		return nil, err
	}
	tarArt.Origin = addr
	fsUUID, _ := imgRes.Meta["uuid"].(string)
	entries, _ := imgRes.Meta["entries"].(float64)
	types := partitionTypes[n.arch]
	dir := "rootfs/" + n.name + "/"
	extra := map[string]any{"filesystem": n.image.Filesystem, "uuid": fsUUID, "entries": int64(entries), "tree_sha256": tarArt.SHA256}
	if v, ok := imgRes.Meta["mkfs"].(string); ok {
		extra["mkfs"] = v
	}
	data := img
	partUUID := derive.UUID("partition", img.SHA256).String()
	verityVal := cty.NullVal(verityType)
	var arts []recipes.OutputArtifact
	if n.verity != nil {
		r, err := metaResult(results["verity"].Meta)
		if err != nil {
			return nil, err
		}
		dataUUID, hashUUID, err := r.PartitionUUIDs()
		if err != nil {
			return nil, err
		}
		partUUID = dataUUID.String()
		hashPart := hashUUID.String()
		dataDev, hashDev := n.verity.dataDevice, n.verity.hashDevice
		if dataDev == "" {
			dataDev = "PARTUUID=" + partUUID
		}
		if hashDev == "" {
			hashDev = "PARTUUID=" + hashPart
			if r.Layout == verity.LayoutAppended {
				hashDev = dataDev
			}
		}
		hash := data
		if r.Layout == verity.LayoutAppended {
			data, err = results["verity"].File(n.imageName())
			hash = data
			hashPart = partUUID
		} else {
			hash, err = results["verity"].File("verity")
		}
		if err != nil {
			return nil, err
		}
		data.Origin, hash.Origin = addr, addr+".verity"
		kata := r.KataCmdline(dataDev, hashDev, n.image.Filesystem)
		systemd := r.SystemdCmdline(dataDev, hashDev, n.image.Filesystem)
		vals := map[string]any{
			"root_hash": r.RootHash, "salt": r.Salt, "hash_algorithm": r.Algorithm,
			"data_blocks": r.DataBlocks, "data_block_size": r.DataBlockSize, "hash_block_size": r.HashBlockSize,
			"hash_offset": r.HashOffset, "hash_start_block": r.HashStartBlock, "superblock": r.Superblock,
			"layout": r.Layout, "uuid": r.UUID, "data_device": dataDev, "hash_device": hashDev,
			"table": r.Table(dataDev, hashDev), "partition_type": types[1], "partition_uuid": hashPart,
		}
		obj := map[string]cty.Value{"artifact": recipes.ArtifactVal(hash),
			"cmdline": stringList(kata), "systemd_cmdline": stringList(systemd)}
		for k, v := range vals {
			ty, _ := gocty.ImpliedType(v)
			cv, err := gocty.ToCtyValue(v, ty)
			if err != nil {
				return nil, err
			}
			obj[k] = cv
		}
		verityVal = cty.ObjectVal(obj)
		vextra := map[string]any{}
		for k, v := range vals {
			vextra[k] = v
		}
		vextra["cmdline"] = strings.Join(kata, " ")
		vextra["systemd_cmdline"] = strings.Join(systemd, " ")
		if r.Layout == verity.LayoutSeparate {
			extra["verity_root_hash"] = r.RootHash
			arts = append(arts, recipes.OutputArtifact{Name: addr + ".verity", Kind: "verity", Path: dir + n.imageName() + ".verity", File: hash, Extra: vextra})
		} else {
			// One file holds the image and its tree: its entry carries
			// the verity fields.
			delete(vextra, "partition_uuid")
			delete(vextra, "partition_type")
			for k, v := range vextra {
				extra[k] = v
			}
		}
	}
	extra["partition_uuid"] = partUUID
	extra["partition_type"] = types[0]
	arts = append([]recipes.OutputArtifact{{Name: addr, Kind: "rootfs", Path: dir + n.imageName(), File: data, Extra: extra}}, arts...)
	return &recipes.Output{
		Value: cty.ObjectVal(map[string]cty.Value{
			"artifact": recipes.ArtifactVal(data), "image": recipes.ArtifactVal(data), "tar": recipes.ArtifactVal(tarArt),
			"filesystem": cty.StringVal(n.image.Filesystem), "uuid": cty.StringVal(fsUUID),
			"size": cty.NumberIntVal(data.Size), "partition_type": cty.StringVal(types[0]),
			"partition_uuid": cty.StringVal(partUUID), "verity": verityVal,
		}),
		Artifacts: arts,
	}, nil
}

// remarshal converts v (a struct, or what JSON made of one) into dst.
func remarshal(v, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

func stringList(ss []string) cty.Value {
	vs := make([]cty.Value, len(ss))
	for i, s := range ss {
		vs[i] = cty.StringVal(s)
	}
	return cty.ListVal(vs)
}
