from socialcart.cli import main

main()
