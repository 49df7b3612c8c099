"""What a program that talks to a node uses: keys, units, light-client verification, proven reads."""
