# The managed plugin's root file system as an image, for those who build
# plugins with docker: `make plugin-image` builds it from the tree that
# `make plugin-dir` wrote (the build context is build/plugin/rootfs), and
# `docker export` of a container of it gives back that tree. Nothing is
# pulled: the image starts from scratch and holds the static binary and
# the empty directories the runtime mounts over.
FROM scratch
COPY . /
ENTRYPOINT ["/cvmfs-graphdriver", "--hold-on-error"]
