// The program of the layer checks (CMakeLists.txt): it calls nothing; linking
// the whole of one layer's archive into it with only the layers below is the
// check.
int main() { return 0; }
