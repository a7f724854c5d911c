/* fs — the FUSE adapter (mount layout in shared DESIGN.md §2). */
#ifndef TISFS_FS_H
#define TISFS_FS_H

struct fuse_operations;

/* The operations table to pass to fuse_new (FUSE_USE_VERSION 31). */
const struct fuse_operations *fs_operations(void);

#endif
