# Resolved input pins, written by `cocobuild lock`. Builds use them; --locked refuses any drift.

input "linux_source" {
  source = "deb:linux-source-6.12=6.12.117-1~deb12u1"
  sha256 = "e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703"
}

input "ovmf_amdsev" {
  source = "deb:ovmf-amdsev/forky=2026.08+ds-2"
  sha256 = "92c9b6d15e4eeb371938c3f99080c1a8fc057dfd6bc0509d37f8b615e9edebfb"
}

input "ovmf_tdx" {
  source = "deb:ovmf-generic/forky=2026.08+ds-2"
  sha256 = "05c1593998ba58700ff86c062bde306321af1f5a2943ea9ceef6c2332f3f3374"
}

packages "rootfs.root" {
  suite   = "bookworm"
  request = "492c8b5ffcc9c6cdbb1aa85f362b3e6e1557429b203a3160b6b5f503d701a85c"
  package "base-files" {
    version = "12.4+deb12u15"
    arch    = "amd64"
    sha256  = "3eb1ea6d85488f488cc2a163b98ad640ef88cee4c79287cf14e361aaf6206f47"
  }
  package "base-passwd" {
    version = "3.6.1"
    arch    = "amd64"
    sha256  = "908ca1b35125f49125ae56945a72bc11ce0fcec85a8d980d10d83bb3a610f518"
  }
  package "bash" {
    version = "5.2.15-2+b13"
    arch    = "amd64"
    sha256  = "82130bb6a560cd2a7234d8018baf73f188f5dd56413d5aa0accc987b2197a6a1"
  }
  package "bsdutils" {
    version = "1:2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "6cae172b006a4603e710e046c3acba8d98d36748894cbe3eeda31d415fec331e"
  }
  package "coreutils" {
    version = "9.1-1"
    arch    = "amd64"
    sha256  = "61038f857e346e8500adf53a2a0a20859f4d3a3b51570cc876b153a2d51a3091"
  }
  package "dash" {
    version = "0.5.12-2"
    arch    = "amd64"
    sha256  = "33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f"
  }
  package "debconf" {
    version = "1.5.82"
    arch    = "all"
    sha256  = "74ab14194a3762b2fc717917dcfda42929ab98e3c59295a063344dc551cd7cc8"
  }
  package "debianutils" {
    version = "5.7-0.5~deb12u1"
    arch    = "amd64"
    sha256  = "55f951359670eb3236c9e2ccd5fac9ccb3db734f5a22aff21589e7a30aee48c9"
  }
  package "diffutils" {
    version = "1:3.8-4"
    arch    = "amd64"
    sha256  = "8bdfedc14c1035e3750e9f055ac9c1ecd9b5d05d9e6dc6466c4e9237eef407dd"
  }
  package "dpkg" {
    version = "1.21.23"
    arch    = "amd64"
    sha256  = "f89e9f8d1a4a50ade44be3ed59a6ec55460fce205d2f8520c5c492137c5b609b"
  }
  package "findutils" {
    version = "4.9.0-4"
    arch    = "amd64"
    sha256  = "5dd86bd0af4aa73f067dfd6b8339dd868f2dd84056aa79db29d1206d4fbc5e04"
  }
  package "gcc-12-base" {
    version = "12.2.0-14+deb12u1"
    arch    = "amd64"
    sha256  = "1896a2aacf4ad681ff5eacc24a5b0ca4d5d9c9b9c9e4b6de5197bc1e116ea619"
  }
  package "grep" {
    version = "3.8-5"
    arch    = "amd64"
    sha256  = "3264acea728df3c48a54f20e9291b965130e306b9d00adac76647049da7196df"
  }
  package "gzip" {
    version = "1.12-1"
    arch    = "amd64"
    sha256  = "eabec1dde2834f72540d7b93fc5df2625f52611c06d93d61f5cdb12480e0e6a3"
  }
  package "hostname" {
    version = "3.23+nmu1"
    arch    = "amd64"
    sha256  = "17d9a2f3c05004499d80e180d2440fd716f84c32b65f09d96c9a024af4d1d0e7"
  }
  package "init-system-helpers" {
    version = "1.65.2+deb12u1"
    arch    = "all"
    sha256  = "afab482524c64e4e256eb5cab43c1a96dc493ec476d94f19f1a5ec3de5fa0fef"
  }
  package "libacl1" {
    version = "2.3.1-3"
    arch    = "amd64"
    sha256  = "8be9df5795114bfe90e2be3d208ef47a5edd3fc7b3e20d387a597486d444e5e2"
  }
  package "libattr1" {
    version = "1:2.5.1-4"
    arch    = "amd64"
    sha256  = "c4945123d66d0503ba42e2fc0585abc76d0838978c6d277b9cc37a4da25d1a34"
  }
  package "libaudit-common" {
    version = "1:3.0.9-1"
    arch    = "all"
    sha256  = "17d0341ca6ce604ce59c296780ac2c2a24141a769823c50669af942c025e6591"
  }
  package "libaudit1" {
    version = "1:3.0.9-1"
    arch    = "amd64"
    sha256  = "30954df4b5a7c505661ba8ae5e6ea94f5805e408899fb400783bb166eb5ff306"
  }
  package "libblkid1" {
    version = "2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "5a083377f29191cafcdf0f91ec124349b4a7895b531556633a136e43c6d53943"
  }
  package "libbz2-1.0" {
    version = "1.0.8-5+b1"
    arch    = "amd64"
    sha256  = "54149da3f44b22d523b26b692033b84503d822cc5122fed606ea69cc83ca5aeb"
  }
  package "libc-bin" {
    version = "2.36-9+deb12u14"
    arch    = "amd64"
    sha256  = "e667401af91fad95f15b3ebd25d1abd8373fd18b00dc32219678413170544e84"
  }
  package "libc6" {
    version = "2.36-9+deb12u14"
    arch    = "amd64"
    sha256  = "ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf"
  }
  package "libcap-ng0" {
    version = "0.8.3-1+b3"
    arch    = "amd64"
    sha256  = "b4b54769c77e4a71c8b33aee4d600ba28a9994a1c6f60d55d4ebe7fc44882e07"
  }
  package "libcap2" {
    version = "1:2.66-4+deb12u3+b1"
    arch    = "amd64"
    sha256  = "8d684c673e7483802a5c447834b0df6fce006eb3a7109e1be412f5ad425bb24f"
  }
  package "libcrypt1" {
    version = "1:4.4.33-2"
    arch    = "amd64"
    sha256  = "f5f60a5cdfd4e4eaa9438ade5078a57741a7a78d659fcb0c701204f523e8bd29"
  }
  package "libdb5.3" {
    version = "5.3.28+dfsg2-1"
    arch    = "amd64"
    sha256  = "7dc5127b8dd0da80e992ba594954c005ae4359d839a24eb65d0d8129b5235c84"
  }
  package "libdebconfclient0" {
    version = "0.270"
    arch    = "amd64"
    sha256  = "7d2b2b700bae0ba67a13655fabba6a98da3f6ce7dee43d1ee0ac433b7ca1d947"
  }
  package "libfile-find-rule-perl" {
    version = "0.34-4~deb12u1"
    arch    = "all"
    sha256  = "d941143c65e47eff192195ed1b8367d3d74e5a0de668fc5ae9d787383ec48c23"
  }
  package "libgcc-s1" {
    version = "12.2.0-14+deb12u1"
    arch    = "amd64"
    sha256  = "3016e62cb4b7cd8038822870601f5ed131befe942774d0f745622cc77d8a88f7"
  }
  package "libgcrypt20" {
    version = "1.10.1-3+deb12u1"
    arch    = "amd64"
    sha256  = "e7a56552139c693904a6f9712234c05fe918353273a7cbdb5e62f423ad71bb97"
  }
  package "libgdbm-compat4" {
    version = "1.23-3"
    arch    = "amd64"
    sha256  = "4af36a590b68d415a78d9238b932b6a4579f515ec8a8016597498acff5b515a4"
  }
  package "libgdbm6" {
    version = "1.23-3"
    arch    = "amd64"
    sha256  = "95fe4a1336532450e67bd067892f46eaa484139919ea8d067a9ffcbf5a4bf883"
  }
  package "libgmp10" {
    version = "2:6.2.1+dfsg1-1.1"
    arch    = "amd64"
    sha256  = "187aedef2ed763f425c1e523753b9719677633c7eede660401739e9c893482bd"
  }
  package "libgpg-error0" {
    version = "1.46-1"
    arch    = "amd64"
    sha256  = "89944ee11d7370ce6ef46fc52f094c4a6512eff8943ec4c6ebefeae6360ceada"
  }
  package "liblz4-1" {
    version = "1.9.4-1"
    arch    = "amd64"
    sha256  = "64cde86cef1deaf828bd60297839b59710b5cd8dc50efd4f12643caaee9389d3"
  }
  package "liblzma5" {
    version = "5.4.1-1+deb12u1"
    arch    = "amd64"
    sha256  = "f96d8876b53ec89d76a992bc199679b818cf518225a768954d9451fb556a4eb7"
  }
  package "libmd0" {
    version = "1.0.4-2"
    arch    = "amd64"
    sha256  = "03539fd30c509e27101d13a56e52eda9062bdf1aefe337c07ab56def25a13eab"
  }
  package "libmount1" {
    version = "2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "f46e2d6b006951825adde9757790b6609d7c66c7700f9b68f3db913eaac323c3"
  }
  package "libnumber-compare-perl" {
    version = "0.03-3"
    arch    = "all"
    sha256  = "cf95662e27037d92c582647400bb1ca7a6dfd2eb26eee5b968b23263cd4976dc"
  }
  package "libpam-modules" {
    version = "1.5.2-6+deb12u2"
    arch    = "amd64"
    sha256  = "19fb4838168e68bc15a5606070f14b1162bb34a3899686913f5d661f1707f483"
  }
  package "libpam-modules-bin" {
    version = "1.5.2-6+deb12u2"
    arch    = "amd64"
    sha256  = "e7b1f6c60a51398920c5da792016161a65bf1c7caaa64140dd2099176ed51280"
  }
  package "libpam-runtime" {
    version = "1.5.2-6+deb12u2"
    arch    = "all"
    sha256  = "7a4f26d54c1e3ee8c68095f9d9013d13dd89a33ff78ef87330d21f21235fc278"
  }
  package "libpam0g" {
    version = "1.5.2-6+deb12u2"
    arch    = "amd64"
    sha256  = "a06f889caf9e97ccf04dedec0905573916bc6ec3366ade2c6ef8900047fd5cc1"
  }
  package "libpcre2-8-0" {
    version = "10.42-1"
    arch    = "amd64"
    sha256  = "030db54f4d76cdfe2bf0e8eb5f9efea0233ab3c7aa942d672c7b63b52dbaf935"
  }
  package "libperl5.36" {
    version = "5.36.0-7+deb12u3"
    arch    = "amd64"
    sha256  = "591903643119c7e1735011369287976eccab1d79b1d2f210760e2138d0a3aa46"
  }
  package "libselinux1" {
    version = "3.4-1+b6"
    arch    = "amd64"
    sha256  = "2b07f5287b9105f40158b56e4d70cc1652dac56a408f3507b4ab3d061eed425f"
  }
  package "libsmartcols1" {
    version = "2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "84088c6895fc07538fc51624899f3f71835188e0d38ebc3812097ac13da523b0"
  }
  package "libsystemd0" {
    version = "252.39-1~deb12u2"
    arch    = "amd64"
    sha256  = "013c07514a9e4933b2d5c098018695a6aa42d085dbc483ce2c094a954c8a1b0a"
  }
  package "libtext-glob-perl" {
    version = "0.11-3"
    arch    = "all"
    sha256  = "b0f1a40c5b26f4e4c83a4f8e1768fcf50ae9aac84b7f807ccb38123b50396f64"
  }
  package "libtinfo6" {
    version = "6.4-4"
    arch    = "amd64"
    sha256  = "072d908f38f51090ca28ca5afa3b46b2957dc61fe35094c0b851426859a49a51"
  }
  package "libudev1" {
    version = "252.39-1~deb12u2"
    arch    = "amd64"
    sha256  = "6f7e08f11c4809d2e5998c775f7b423ab5ec2ce0309494b4a2615037052245e2"
  }
  package "libuuid1" {
    version = "2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "5fff398321da62d28a842bcbabd193d72ae21724962c029dc32b1dc6b2deaeaf"
  }
  package "libzstd1" {
    version = "1.5.4+dfsg2-5"
    arch    = "amd64"
    sha256  = "6315b5ac38b724a710fb96bf1042019398cb656718b1522279a5185ed39318fa"
  }
  package "login" {
    version = "1:4.13+dfsg1-1+deb12u2"
    arch    = "amd64"
    sha256  = "f1cc45bf505a8457340dc3c36f3a01a1835aaf564d73d9d394afb8ccfb6595a0"
  }
  package "mawk" {
    version = "1.3.4.20200120-3.1"
    arch    = "amd64"
    sha256  = "bcbc83f391854ea9d50ce2a4101aacf330de3b8b71d81a798faadba14a157f78"
  }
  package "ncurses-base" {
    version = "6.4-4"
    arch    = "all"
    sha256  = "bfd1d89f833c09a28b062ee916495cf69649ca2bf529532476c7b69d75d24909"
  }
  package "ncurses-bin" {
    version = "6.4-4"
    arch    = "amd64"
    sha256  = "396d6e453aee6d71b7141f0bfb333a6c08a44c64f77632bdf52894ccd123db46"
  }
  package "perl" {
    version = "5.36.0-7+deb12u3"
    arch    = "amd64"
    sha256  = "afa50ec7d9b1a407cd0187dae033644ef13578d4f3792435e0c41b962ffec0c4"
  }
  package "perl-base" {
    version = "5.36.0-7+deb12u3"
    arch    = "amd64"
    sha256  = "8ec874926e211807cde71e1b0a2311d2534ab3539dffcb2c8553633f542efc1a"
  }
  package "perl-modules-5.36" {
    version = "5.36.0-7+deb12u3"
    arch    = "all"
    sha256  = "3d237ccb1ea32727b6573d43c67d78337aa928a81148d36cef54b369a07c240a"
  }
  package "sed" {
    version = "4.9-1+deb12u1"
    arch    = "amd64"
    sha256  = "fd557efeee8aae4619c2cb7f68aadccb804322ad4a99ab048aaae5901d253885"
  }
  package "sysvinit-utils" {
    version = "3.06-4"
    arch    = "amd64"
    sha256  = "11790842108768ec52432ea22e7b4f057232813b7c27ef6dfe1aba776a5cb90e"
  }
  package "tar" {
    version = "1.34+dfsg-1.2+deb12u1"
    arch    = "amd64"
    sha256  = "24fb92e98c2969171f81a8b589263d705f6b1670f95d121cd74c810d4605acc3"
  }
  package "usrmerge" {
    version = "37~deb12u1"
    arch    = "all"
    sha256  = "8a25318213244f075b56363408c87a519ed8cef24b270c3d045ef35d695de13a"
  }
  package "util-linux" {
    version = "2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "8eb241ff24b2e1ee9c0373f4fc9bc728b85bf5966c1496154df7da01c0e42f34"
  }
  package "util-linux-extra" {
    version = "2.38.1-5+deb12u3"
    arch    = "amd64"
    sha256  = "b097a68c68e5c47a18e82678729dd9986782cf1d439f53beafad6f6dd3e6d688"
  }
  package "zlib1g" {
    version = "1:1.2.13.dfsg-1"
    arch    = "amd64"
    sha256  = "d7dd1d1411fedf27f5e27650a6eff20ef294077b568f4c8c5e51466dc7c08ce4"
  }
}
