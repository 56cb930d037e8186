/** Real-component test rig shared by every package's tests (registry, offline images, leak check, probes). */
export const RIG_VERSION = 0;
