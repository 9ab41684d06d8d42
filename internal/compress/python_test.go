package compress

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// pyModules are the modules barman imports for its six codecs.
var pyModules = []string{"gzip", "bz2", "lzma", "snappy", "zstandard", "lz4.frame", "tarfile"}

// python returns a python3 that can import every codec module barman uses.
// The Debian interpreter comes first: that is where python3-snappy,
// python3-zstandard, python3-lz4 and barman itself are installed, while a
// python3 earlier on PATH (pyenv) may lack them. A missing module skips
// the test, or fails it when CI=true.
func python(t *testing.T) string {
	t.Helper()
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	imp := "import " + strings.Join(pyModules, ", ")
	var lastErr string
	for _, c := range cands {
		out, err := exec.Command(c, "-c", imp).CombinedOutput()
		if err == nil {
			return c
		}
		lastErr = strings.TrimSpace(string(out))
	}
	testenv.Missing(t, "python3 with modules "+strings.Join(pyModules, ", ")+
		" (Debian python3-snappy python3-zstandard python3-lz4; last error: "+lastErr+")")
	return ""
}

// pyScript runs jobs read as JSON from stdin with the calls barman makes
// (barman/clients/cloud_compression.py, barman/compression.py) and prints
// one JSON result per job.
const pyScript = `
import bz2, gzip, hashlib, io, json, lzma, shutil, sys, tarfile
import lz4.frame, snappy, snappy.snappy, zstandard

try:
    snappy.snappy._crc32c(b"")
except SystemError:
    # Debian bookworm's python3-snappy 0.5.3 C extension fails on Python >= 3.10
    # ("PY_SSIZE_T_CLEAN macro must be defined"), so barman-cloud's own snappy
    # fails there too. Replace only the CRC-32C function; the framing code and
    # the snappy block codec stay python-snappy's.
    _T = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        _T.append(c)
    def _crc32c(data):
        crc = 0xFFFFFFFF
        for b in data:
            crc = _T[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    snappy.snappy._crc32c = _crc32c

def decompress(algo, src, dst):
    if algo == "gzip":
        with gzip.GzipFile(fileobj=src, mode="rb") as f: shutil.copyfileobj(f, dst)
    elif algo == "bzip2":
        with bz2.BZ2File(src, "rb") as f: shutil.copyfileobj(f, dst)
    elif algo == "xz":
        with lzma.open(src) as f: shutil.copyfileobj(f, dst)
    elif algo == "snappy":
        snappy.stream_decompress(src, dst)
    elif algo == "snappy-chunked":  # SnappyCompressor.decompress, the tar restore path
        d = snappy.StreamDecompressor()
        while True:
            chunk = src.read(65536)
            if not chunk: break
            dst.write(d.decompress(chunk))
        d.flush()
    elif algo == "zstd":
        shutil.copyfileobj(zstandard.ZstdDecompressor().stream_reader(src), dst)
    elif algo == "lz4":
        with lz4.frame.open(src, mode="rb") as f: shutil.copyfileobj(f, dst)
    else:
        raise ValueError(algo)

def compress(algo, level, variant, data):
    out = io.BytesIO()
    if algo == "gzip":
        if variant == "multi":
            return gzip.compress(data[:len(data)//2], level) + gzip.compress(data[len(data)//2:], level)
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=level) as gz:
            shutil.copyfileobj(io.BytesIO(data), gz)
        return out.getvalue()
    if algo == "bzip2":
        if variant == "multi":
            return bz2.compress(data[:len(data)//2], level) + bz2.compress(data[len(data)//2:], level)
        return bz2.compress(data, level)
    if algo == "xz":
        check = {"": lzma.CHECK_CRC64, "crc32": lzma.CHECK_CRC32, "sha256": lzma.CHECK_SHA256, "nocheck": lzma.CHECK_NONE}.get(variant, lzma.CHECK_CRC64)
        if variant == "multi":
            return lzma.compress(data[:len(data)//2], preset=level) + lzma.compress(data[len(data)//2:], preset=level)
        if variant == "extreme":
            return lzma.compress(data, preset=level | lzma.PRESET_EXTREME)
        return lzma.compress(data, check=check, preset=level)
    if algo == "snappy":
        if variant == "chunked":  # SnappyCompressor.add_chunk, the tar upload path
            c = snappy.StreamCompressor()
            for i in range(0, len(data), 100000):
                out.write(c.add_chunk(data[i:i+100000]))
            return out.getvalue()
        snappy.stream_compress(io.BytesIO(data), out)
        return out.getvalue()
    if algo == "zstd":
        if variant == "multi":
            c = zstandard.ZstdCompressor(level=level, write_checksum=True)
            return c.compress(data[:len(data)//2]) + c.compress(data[len(data)//2:])
        c = zstandard.ZstdCompressor(level=level, write_checksum=(variant == "checksum"))
        c.copy_stream(io.BytesIO(data), out)
        return out.getvalue()
    if algo == "lz4":
        kw = {"compression_level": level}
        if variant == "4mb": kw["block_size"] = lz4.frame.BLOCKSIZE_MAX4MB
        if variant == "checksum": kw.update(content_checksum=True, block_checksum=True)
        if variant == "independent": kw["block_linked"] = False
        if variant == "multi":
            return lz4.frame.compress(data[:len(data)//2], **kw) + lz4.frame.compress(data[len(data)//2:], **kw)
        return lz4.frame.compress(data, **kw)
    raise ValueError(algo)

def tarlist(algo, src):
    if algo == "snappy":
        raw = io.BytesIO()
        decompress("snappy-chunked", src, raw)
        raw.seek(0)
        tf = tarfile.open(fileobj=raw, mode="r|")
    else:
        tf = tarfile.open(fileobj=src, mode={"gzip": "r|gz", "bzip2": "r|bz2", "xz": "r|xz", "": "r|"}[algo])
    members = {}
    for m in tf:
        members[m.name] = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
    return members

for job in json.load(sys.stdin):
    res = {"ok": True}
    try:
        if job["op"] == "decompress":
            out = io.BytesIO()
            with open(job["src"], "rb") as f:
                decompress(job["algo"], f, out)
            res["sha256"] = hashlib.sha256(out.getvalue()).hexdigest()
            res["size"] = len(out.getvalue())
        elif job["op"] == "compress":
            with open(job["src"], "rb") as f:
                data = f.read()
            with open(job["dst"], "wb") as f:
                f.write(compress(job["algo"], job["level"], job.get("variant", ""), data))
        elif job["op"] == "tar":  # tarfile stream modes, as CloudTarUploader writes
            with open(job["src"], "rb") as f:
                data = f.read()
            raw = io.BytesIO()
            mode = {"gzip": "w|gz", "bzip2": "w|bz2", "xz": "w|xz"}.get(job["algo"], "w|")
            with tarfile.open(fileobj=raw, mode=mode, format=tarfile.PAX_FORMAT) as tf:
                ti = tarfile.TarInfo("base/1/1259")
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            out = raw.getvalue()
            if job["algo"] == "snappy":
                c = snappy.StreamCompressor()
                out = b"".join(c.add_chunk(out[i:i+65536]) for i in range(0, len(out), 65536))
            with open(job["dst"], "wb") as f:
                f.write(out)
        elif job["op"] == "tarlist":
            with open(job["src"], "rb") as f:
                res["members"] = tarlist(job["algo"], f)
    except Exception as e:
        res = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(res))
`

type pyJob struct {
	Op      string `json:"op"`
	Algo    string `json:"algo"`
	Level   int    `json:"level"`
	Variant string `json:"variant,omitempty"`
	Src     string `json:"src"`
	Dst     string `json:"dst,omitempty"`
}

type pyResult struct {
	OK      bool              `json:"ok"`
	Error   string            `json:"error"`
	SHA256  string            `json:"sha256"`
	Size    int               `json:"size"`
	Members map[string]string `json:"members"`
}

// runPython runs jobs in one python3 process and returns their results.
func runPython(t *testing.T, py string, jobs []pyJob) []pyResult {
	t.Helper()
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", pyScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var res []pyResult
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r pyResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("python3 output: %v\n%s", err, out)
		}
		res = append(res, r)
	}
	if len(res) != len(jobs) {
		t.Fatalf("python3 returned %d results for %d jobs\n%s", len(res), len(jobs), stderr.String())
	}
	return res
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPythonReadsOurs compresses with NewWriter and decompresses with the
// Python modules barman uses, at every level class.
func TestPythonReadsOurs(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	small := walData(1<<20, 11)
	type want struct {
		name string
		data []byte
	}
	var jobs []pyJob
	var wants []want
	add := func(a Algorithm, lvl Level, data []byte, tag string) {
		name := fmt.Sprintf("%s-%s-%s", a, lvl, tag)
		p := filepath.Join(dir, name)
		var c []byte
		if tag == "16MiB" {
			c = compressedSegment(t, a)
		} else {
			c = compressBytes(t, a, lvl, data)
		}
		if err := os.WriteFile(p, c, 0o600); err != nil {
			t.Fatal(err)
		}
		algo := string(a)
		jobs = append(jobs, pyJob{Op: "decompress", Algo: algo, Src: p})
		wants = append(wants, want{name, data})
		if a == Snappy {
			jobs = append(jobs, pyJob{Op: "decompress", Algo: "snappy-chunked", Src: p})
			wants = append(wants, want{name + "/chunked", data})
		}
	}
	for _, a := range Algorithms() {
		levels := levelsFor(a)
		if a == Snappy {
			levels = []Level{LevelMedium} // no levels; the CRC may be pure Python (slow)
		}
		for _, lvl := range levels {
			add(a, lvl, small, "1MiB")
		}
		add(a, LevelMedium, []byte{}, "empty")
		add(a, LevelMedium, []byte("x"), "1byte")
		if !testing.Short() && a != Snappy {
			add(a, LevelMedium, benchSegment(), "16MiB")
		}
	}
	for i, r := range runPython(t, py, jobs) {
		w := wants[i]
		switch {
		case !r.OK:
			t.Errorf("%s: Python cannot read our output: %s", w.name, r.Error)
		case r.SHA256 != sha256Hex(w.data):
			t.Errorf("%s: Python read %d bytes, want %d with another checksum", w.name, r.Size, len(w.data))
		}
	}
}

// TestOursReadsPython decompresses what the Python modules write, with the
// calls and levels barman uses and the variants other writers produce.
func TestOursReadsPython(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	data := walData(1<<20, 13)
	src := filepath.Join(dir, "input")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	type variant struct {
		algo    Algorithm
		level   int
		variant string
	}
	var vs []variant
	for a, levels := range map[Algorithm][]int{
		Gzip: {1, 6, 9}, Bzip2: {1, 5, 9}, XZ: {1, 3, 5, 9}, Snappy: {0},
		Zstd: {-5, 1, 4, 9, 19, 22}, LZ4: {0, 6, 10, 16},
	} {
		for _, l := range levels {
			vs = append(vs, variant{a, l, ""})
		}
	}
	vs = append(vs,
		variant{Gzip, 6, "multi"}, variant{Bzip2, 5, "multi"},
		variant{XZ, 3, "multi"}, variant{XZ, 3, "crc32"}, variant{XZ, 3, "sha256"}, variant{XZ, 3, "nocheck"}, variant{XZ, 6, "extreme"},
		variant{Snappy, 0, "chunked"},
		variant{Zstd, 4, "multi"}, variant{Zstd, 4, "checksum"},
		variant{LZ4, 6, "multi"}, variant{LZ4, 6, "4mb"}, variant{LZ4, 6, "checksum"}, variant{LZ4, 6, "independent"},
	)
	jobs := make([]pyJob, len(vs))
	for i, v := range vs {
		jobs[i] = pyJob{Op: "compress", Algo: string(v.algo), Level: v.level, Variant: v.variant,
			Src: src, Dst: filepath.Join(dir, fmt.Sprintf("%s-%d-%s", v.algo, v.level, v.variant))}
	}
	for i, r := range runPython(t, py, jobs) {
		v, name := vs[i], filepath.Base(jobs[i].Dst)
		if !r.OK {
			t.Errorf("%s: Python compress: %s", name, r.Error)
			continue
		}
		c, err := os.ReadFile(jobs[i].Dst)
		if err != nil {
			t.Fatal(err)
		}
		out, err := decompressBytes(v.algo, c)
		if err != nil {
			t.Errorf("%s: decompress Python output: %v", name, err)
		} else if !bytes.Equal(out, data) {
			t.Errorf("%s: got %d bytes, want %d identical bytes", name, len(out), len(data))
		}
	}
}

// TestOursReadsPythonTar reads tar streams written by Python tarfile's
// "w|gz", "w|bz2" and "w|xz" modes and by SnappyCompressor, as
// barman-cloud-backup writes them.
func TestOursReadsPythonTar(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	data := walData(200<<10, 18)
	src := filepath.Join(dir, "input")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	algos := []Algorithm{None, Gzip, Bzip2, XZ, Snappy}
	jobs := make([]pyJob, len(algos))
	for i, a := range algos {
		jobs[i] = pyJob{Op: "tar", Algo: string(a), Src: src, Dst: filepath.Join(dir, "data.tar"+a.TarSuffix())}
	}
	for i, r := range runPython(t, py, jobs) {
		name := filepath.Base(jobs[i].Dst)
		if !r.OK {
			t.Errorf("%s: Python tarfile: %s", name, r.Error)
			continue
		}
		a, ok := FromTarName(name)
		if !ok || a != algos[i] {
			t.Fatalf("FromTarName(%s) = %s, %v", name, a, ok)
		}
		f, err := os.Open(jobs[i].Dst)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := NewReader(f, a)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(tr)
		if err != nil || h.Name != "base/1/1259" || !bytes.Equal(body, data) {
			t.Errorf("%s: member %q, %d bytes, %v", name, h.Name, len(body), err)
		}
		// Read to the end so the compressed stream's trailer is checked.
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Errorf("%s: after the archive: %v", name, err)
		}
		zr.Close()
		f.Close()
	}
}

// TestPythonReadsOurTar writes tar archives through NewTarWriter and reads
// them with Python tarfile stream modes, as barman-cloud-restore does.
func TestPythonReadsOurTar(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	files := map[string][]byte{
		"./PG_VERSION":      []byte("17\n"),
		"base/1/1259":       walData(300<<10, 14),
		"global/pg_control": walData(8192, 15),
	}
	var jobs []pyJob
	for _, a := range []Algorithm{None, Gzip, Bzip2, Snappy, XZ} {
		p := filepath.Join(dir, "data.tar"+a.TarSuffix())
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		cw, err := NewTarWriter(f, a)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(cw)
		for _, name := range []string{"./PG_VERSION", "base/1/1259", "global/pg_control"} {
			body := files[name]
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := cw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, pyJob{Op: "tarlist", Algo: string(a), Src: p})
	}
	for i, r := range runPython(t, py, jobs) {
		if !r.OK {
			t.Errorf("%s: Python tarfile: %s", filepath.Base(jobs[i].Src), r.Error)
			continue
		}
		if len(r.Members) != len(files) {
			t.Errorf("%s: Python saw members %v", filepath.Base(jobs[i].Src), r.Members)
		}
		for name, body := range files {
			if r.Members[name] != sha256Hex(body) {
				t.Errorf("%s: member %s differs in Python", filepath.Base(jobs[i].Src), name)
			}
		}
	}
}
