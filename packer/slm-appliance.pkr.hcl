# OpenNebula marketplace image: one-apps organisation (context CD, QEMU source on a one-apps
# base image, provisioners in order, post-processing, manifest). Runs with Debian's Packer 1.6.6
# (qemu builder built in; no `packer init`). Build with: packer/build.sh (fetches and verifies
# every input first, then calls packer build with these variables).

packer {
  required_version = ">= 1.6.0"
}

variable "base_image" {
  type        = string
  description = "one-apps Debian 12 base image (one-context installed), e.g. export/debian12.qcow2"
}

variable "base_checksum" {
  type        = string
  default     = "none"
  description = "sha256:<hex> of base_image (build.sh passes it; Packer verifies it again)"
}

variable "dist_dir" {
  type        = string
  default     = "build/dist"
  description = "verified inputs from build.sh: wheels/, models/, optional LocalAI files"
}

variable "one_apps_dir" {
  type        = string
  description = "a checkout of OpenNebula/one-apps at the pinned commit (framework scripts)"
}

variable "context_iso" {
  type    = string
  default = "build/context.iso"
}

variable "output_dir" {
  type    = string
  default = "build/image"
}

variable "accelerator" {
  type    = string
  default = "kvm"
}

variable "cpu_model" {
  type        = string
  default     = "host"
  description = "host under KVM; max under TCG (QEMU's emulated CPU with every feature)"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type    = number
  default = 4096
}

variable "disk_size" {
  type    = string
  default = "12288M"
}

variable "default_model" {
  type    = string
  default = "phi-3-mini-4k-instruct-q4"
}

source "qemu" "slm" {
  iso_url          = var.base_image
  iso_checksum     = var.base_checksum
  disk_image       = true
  format           = "qcow2"
  disk_size        = var.disk_size
  disk_compression = false
  disk_cache       = "unsafe"
  disk_discard     = "unmap" # 90-cleanup.sh's fstrim frees deleted blocks before compression
  accelerator      = var.accelerator
  headless         = true
  output_directory = var.output_dir
  vm_name          = "slm-appliance.qcow2"
  vnc_bind_address = "127.0.0.1"
  # Setting qemuargs drops Packer's defaults: memory, CPUs and the SSH forward are explicit,
  # and the forward binds loopback only. The MAC matches ETH0_MAC in the context CD.
  qemuargs = [
    ["-m", "${var.memory}"],
    ["-smp", "${var.cpus}"],
    ["-cpu", var.cpu_model],
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-device", "virtio-net,netdev=user.0,mac=00:11:22:33:44:55"],
    ["-cdrom", "${var.context_iso}"],
  ]
  communicator = "ssh"
  ssh_username = "root"
  ssh_password = "opennebula"
  ssh_timeout  = "30m"
  # sshd answers before one-context's start script enables the build password: keep trying.
  ssh_handshake_attempts = 200
  shutdown_command       = "poweroff"
}

build {
  sources = ["source.qemu.slm"]

  provisioner "shell" {
    inline = ["install -d -m 0755 /opt/one-appliance/slm /etc/one-appliance/service.d /etc/one-appliance/lib"]
  }

  provisioner "file" {
    source      = "${var.dist_dir}/"
    destination = "/opt/one-appliance/slm"
  }

  provisioner "file" {
    sources     = ["${var.one_apps_dir}/appliances/service.sh", "${var.one_apps_dir}/appliances/lib/common.sh", "${var.one_apps_dir}/appliances/lib/functions.sh", "${var.one_apps_dir}/appliances/scripts/net-90-service-appliance", "${var.one_apps_dir}/appliances/scripts/net-99-report-ready"]
    destination = "/etc/one-appliance/"
  }

  provisioner "file" {
    source      = "appliance/slm-appliance.sh"
    destination = "/etc/one-appliance/service.d/appliance.sh"
  }

  provisioner "shell" {
    script           = "scripts/10-one-apps.sh"
    environment_vars = ["SLM_DEFAULT_MODEL=${var.default_model}"]
  }

  provisioner "shell" {
    script = "scripts/90-cleanup.sh"
  }

  post-processor "shell-local" {
    inline = ["scripts/postprocess.sh ${var.output_dir}/slm-appliance.qcow2 build/export ${var.accelerator}"]
  }
}
