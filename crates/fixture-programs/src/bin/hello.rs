//! The program of the `hello-world` fixture image: the image holds this static
//! binary and nothing else (no shell, no libraries), like Docker Hub's. It says,
//! in our own words, what just happened.

fn main() {
    print!(
        "\
Hello from minibox!

This message shows that your runtime works. To print it, minibox:
 1. looked for the image \"hello-world\" in its local store, and pulled it from
    the registry when it was not there;
 2. made a container from it: new namespaces (its own process numbers, hostname
    and mounts), a cgroup, and a root filesystem that is the image's one layer
    with a writable layer of its own on top;
 3. ran the image's startup command, /hello, as PID 1 inside it;
 4. streamed its output to your terminal, and will exit with its status.

The image contains this one program and nothing else: `minibox run hello-world ls`
fails, because there is no ls in it.
"
    );
}
