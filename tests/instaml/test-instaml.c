/* Unit tests of store/instaml.c. */
#include "config.h"
#include "store/instaml.h"
#include "tests/tap.h"
int main(void) { return tap_done(); }
