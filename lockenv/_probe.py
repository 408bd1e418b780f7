"""The venv probe: run by the venv's own interpreter (`python -I -c <this file>`), it prints the
facts lockenv needs as JSON. Standard library only, and Python 3.8 syntax: venvs may use
interpreters older than lockenv's own, where lockenv's `packaging` cannot even be imported.

It computes what only that interpreter can know, each part ported from packaging 26 (the
functions named in the comments): the PEP 508 marker environment, the interpreter's tag name
and ABIs, and its platform tags on Linux (glibc from the process, musl and the ELF class from
its executable). lockenv turns these into the ordered tag list with packaging's own
`cpython_tags`/`generic_tags`/`compatible_tags` (and `mac_platforms` from the macOS version
reported here), in `environment.tags_from_facts`.
"""

import json
import os
import platform
import re
import struct
import sys
import sysconfig
from importlib.machinery import EXTENSION_SUFFIXES

_SHORT_NAMES = {"python": "py", "cpython": "cp", "pypy": "pp", "ironpython": "ip",
                "jython": "jy"}
_ALLOWED_ARCHS = {"x86_64", "aarch64", "ppc64", "ppc64le", "s390x", "loongarch64", "riscv64"}
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def _full_version(info):
    """packaging.markers._format_full_version"""
    version = "{0.major}.{0.minor}.{0.micro}".format(info)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version


def markers():
    """packaging.markers.default_environment"""
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": _full_version(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _normalize(text):
    return text.replace(".", "_").replace("-", "_").replace(" ", "_")


def cpython_abis():
    """packaging.tags._cpython_abis (no 'u' flag: that is Python 2)"""
    py_version = sys.version_info[:2]
    version = "%d%d" % py_version
    threading = debug = pymalloc = ""
    with_debug = sysconfig.get_config_var("Py_DEBUG")
    has_refcount = hasattr(sys, "gettotalrefcount")
    has_ext = "_d.pyd" in EXTENSION_SUFFIXES
    if with_debug or (with_debug is None and (has_refcount or has_ext)):
        debug = "d"
    if py_version >= (3, 13) and sysconfig.get_config_var("Py_GIL_DISABLED"):
        threading = "t"
    if py_version < (3, 8):
        with_pymalloc = sysconfig.get_config_var("WITH_PYMALLOC")
        if with_pymalloc or with_pymalloc is None:
            pymalloc = "m"
    abis = ["cp" + version + threading + debug + pymalloc]
    if py_version >= (3, 8) and debug:
        abis.append("cp" + version + threading)
    return abis


def generic_abis():
    """packaging.tags._generic_abi"""
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not isinstance(ext_suffix, str) or not ext_suffix.startswith("."):
        raise SystemError("invalid sysconfig.get_config_var('EXT_SUFFIX')")
    parts = ext_suffix.split(".")
    if len(parts) < 3:
        return cpython_abis()
    soabi = parts[1]
    if soabi.startswith("cpython"):
        cpython_parts = soabi.split("-")
        if len(cpython_parts) < 2 or not cpython_parts[1]:
            raise SystemError("invalid sysconfig.get_config_var('EXT_SUFFIX')")
        abi = "cp" + cpython_parts[1]
    elif soabi.startswith("cp"):
        abi = soabi.split("-")[0]
    elif soabi.startswith("pypy"):
        abi = "-".join(soabi.split("-")[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(soabi.split("-")[:3])
    elif soabi:
        abi = soabi
    else:
        return []
    return [_normalize(abi)]


def _elf(path):
    """packaging._elffile.ELFFile: (class, encoding, machine, flags, PT_INTERP path) or None."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                return None
            capacity, encoding = ident[4], ident[5]
            e_fmt, p_fmt, p_idx = {
                (1, 1): ("<HHIIIIIHHH", "<IIIIIIII", (0, 1, 4)),
                (1, 2): (">HHIIIIIHHH", ">IIIIIIII", (0, 1, 4)),
                (2, 1): ("<HHIQQQIHHH", "<IIQQQQQQ", (0, 2, 5)),
                (2, 2): (">HHIQQQIHHH", ">IIQQQQQQ", (0, 2, 5)),
            }[(capacity, encoding)]
            header = struct.unpack(e_fmt, f.read(struct.calcsize(e_fmt)))
            machine, phoff, flags, phentsize, phnum = (header[1], header[4], header[6],
                                                       header[8], header[9])
            interpreter = None
            for index in range(phnum):
                f.seek(phoff + phentsize * index)
                try:
                    data = struct.unpack(p_fmt, f.read(struct.calcsize(p_fmt)))
                except struct.error:
                    continue
                if data[p_idx[0]] != 3:  # not PT_INTERP
                    continue
                f.seek(data[p_idx[1]])
                interpreter = os.fsdecode(f.read(data[p_idx[2]])).strip("\0")
                break
            return capacity, encoding, machine, flags, interpreter
    except (OSError, KeyError, struct.error, ValueError):
        return None


def _have_compatible_abi(elf, archs):
    """packaging._manylinux._have_compatible_abi (armhf: ELF32, LSB, ARM, EABI5, hard float;
    i686: ELF32, LSB, 386)"""
    if "armv7l" in archs:
        return (elf is not None and elf[0] == 1 and elf[1] == 1 and elf[2] == 40
                and elf[3] & 0xFF000000 == 0x05000000 and elf[3] & 0x400 == 0x400)
    if "i686" in archs:
        return elf is not None and elf[0] == 1 and elf[1] == 1 and elf[2] == 3
    return any(arch in _ALLOWED_ARCHS for arch in archs)


def _glibc_version():
    """packaging._manylinux._get_glibc_version: confstr, then ctypes; (-1, -1) when not glibc"""
    text = None
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION").rsplit()[1]  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError, IndexError):
        try:
            import ctypes

            function = ctypes.CDLL(None).gnu_get_libc_version
            function.restype = ctypes.c_char_p
            text = function()
            if isinstance(text, bytes):
                text = text.decode("ascii")
        except (ImportError, OSError, AttributeError):
            text = None
    match = re.match(r"([0-9]+)\.([0-9]+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else (-1, -1)


def _manylinux_compatible(arch, version, current):
    """packaging._manylinux._is_compatible (a distribution's `_manylinux` module decides)"""
    if current < version:
        return False
    try:
        module = __import__("_manylinux")
    except ImportError:
        return True
    if hasattr(module, "manylinux_compatible"):
        result = module.manylinux_compatible(version[0], version[1], arch)
        return True if result is None else bool(result)
    legacy = {(2, 5): "manylinux1_compatible", (2, 12): "manylinux2010_compatible",
              (2, 17): "manylinux2014_compatible"}.get(version)
    if legacy and hasattr(module, legacy):
        return bool(getattr(module, legacy))
    return True


def manylinux_platforms(archs, elf):
    """packaging._manylinux.platform_tags"""
    if not _have_compatible_abi(elf, archs):
        return []
    too_old = (2, 4) if set(archs) & {"x86_64", "i686"} else (2, 16)
    current = _glibc_version()
    maxima = [current] + [(major, 50) for major in range(current[0] - 1, 1, -1)]
    tags = []
    for arch in archs:
        for glibc_max in maxima:
            min_minor = too_old[1] if glibc_max[0] == too_old[0] else -1
            for minor in range(glibc_max[1], min_minor, -1):
                version = (glibc_max[0], minor)
                if _manylinux_compatible(arch, version, current):
                    tags.append("manylinux_%d_%d_%s" % (version[0], version[1], arch))
                    if version in _LEGACY_MANYLINUX:
                        tags.append("%s_%s" % (_LEGACY_MANYLINUX[version], arch))
    return tags


def musllinux_platforms(archs, elf):
    """packaging._musllinux.platform_tags (the musl version from the loader's own banner)"""
    loader = elf[4] if elf is not None else None
    if not loader or "musl" not in loader:
        return []
    try:
        import subprocess  # here, not above: only musl needs it (~5 ms of each probe)

        proc = subprocess.run([loader], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              universal_newlines=True)
    except OSError:
        return []
    lines = [n for n in (n.strip() for n in proc.stderr.splitlines()) if n]
    if len(lines) < 2 or lines[0][:4] != "musl":
        return []
    match = re.match(r"Version (\d+)\.(\d+)", lines[1])
    if not match:
        return []
    major, minor = int(match.group(1)), int(match.group(2))
    return ["musllinux_%d_%d_%s" % (major, m, arch) for arch in archs
            for m in range(minor, -1, -1)]


def linux_platforms():
    """packaging.tags._linux_platforms"""
    linux = _normalize(sysconfig.get_platform())
    if not linux.startswith("linux_"):
        return [linux]
    if struct.calcsize("P") == 4:
        if linux == "linux_x86_64":
            linux = "linux_i686"
        elif linux == "linux_aarch64":
            linux = "linux_armv8l"
    arch = linux.split("_", 1)[1]
    archs = {"armv8l": ["armv8l", "armv7l"]}.get(arch, [arch])
    elf = _elf(sys.executable)
    return (["linux_" + a for a in archs] + manylinux_platforms(archs, elf)
            + musllinux_platforms(archs, elf))


def mac_version():
    """packaging.tags.mac_platforms' defaults: ([major, minor], arch)"""
    version_str, _, cpu_arch = platform.mac_ver()
    version = [int(x) for x in version_str.split(".")[:2]]
    if version == [10, 16]:  # built against an old SDK: ask without the compatibility shim
        import subprocess

        version_str = subprocess.run(
            [sys.executable, "-sS", "-c", "import platform; print(platform.mac_ver()[0])"],
            check=True, env={"SYSTEM_VERSION_COMPAT": "0"}, stdout=subprocess.PIPE,
            universal_newlines=True).stdout
        version = [int(x) for x in version_str.split(".")[:2]]
    if struct.calcsize("P") == 4:
        cpu_arch = "ppc" if cpu_arch.startswith("ppc") else "i386"
    return version, cpu_arch


def platforms():
    """packaging.tags.platform_tags, except macOS: its tags are made by lockenv's packaging
    from the version reported here."""
    system = platform.system()
    if system == "Darwin":
        version, arch = mac_version()
        return {"mac": {"version": version, "arch": arch}}
    if system == "Linux":
        return {"list": linux_platforms()}
    if system == "Emscripten":
        version = sysconfig.get_config_var("PYEMSCRIPTEN_PLATFORM_VERSION")
        head = ["pyemscripten_%s_wasm32" % version] if version else []
        return {"list": head + [_normalize(sysconfig.get_platform())]}
    return {"list": [_normalize(sysconfig.get_platform())]}


def tag_facts():
    """packaging.tags.sys_tags' inputs."""
    name = sys.implementation.name
    short = _SHORT_NAMES.get(name) or name
    nodot = sysconfig.get_config_var("py_version_nodot")
    return {
        "interpreter": short,
        "interpreter_version": str(nodot) if nodot else "%d%d" % sys.version_info[:2],
        "python_version": list(sys.version_info[:2]),
        "abis": cpython_abis() if short == "cp" else generic_abis(),
        "platforms": platforms(),
    }


def main():
    paths = sysconfig.get_paths()
    print(json.dumps({
        "prefix": sys.prefix,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "markers": markers(),
        "tag_facts": tag_facts(),
        "paths": {k: paths[k] for k in ("purelib", "platlib", "scripts", "data", "include")},
    }))


if __name__ == "__main__":
    main()
