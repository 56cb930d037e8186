// Placeholder until the rig's leak check lands (issue 2): vitest loads this before every test file.
export {};
